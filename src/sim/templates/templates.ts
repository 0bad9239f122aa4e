// Starter meshes for `mesh init`: each folder of <package>/templates holds a mesh.yaml,
// its sample services, and a template.json ({description, next?}) that is not copied.
//
//   templates/<name>/{mesh.yaml, frontend/server.js, ...}  ──writeTemplate──▶  <targetDir>/...

import {existsSync} from 'node:fs'
import {copyFile, mkdir, readdir, readFile, writeFile} from 'node:fs/promises'
import path from 'node:path'
import {fileURLToPath} from 'node:url'
import {MeshError} from '../errors.js'
import {SCHEMA_FILE, SCHEMA_MODELINE} from '../config/json-schema.js'
import {generateLarge, largeMeshYaml, type LargeOptions} from './large-architecture.js'

/** Metadata file of a template; describes it and is never copied. */
const META_FILE = 'template.json'

export interface TemplateInfo {
  name: string
  description: string
  /** What to run first, when it is not `mesh up` (a template made for `mesh sim`, say). */
  next?: string
}

/** Templates written by a generator from `mesh init`'s options rather than copied from a folder. */
const GENERATED: Record<string, {description: string; files: (options: LargeOptions) => Record<string, string>}> = {
  large: {
    description:
      'A generated architecture of --services simulated services (default 100): a gateway, aggregators, leaf services and a few databases of fixed capacity, --depth and --fanout deep and wide, the same for the same --seed.',
    files: (options) => ({'mesh.yaml': largeMeshYaml(generateLarge(options))}),
  },
}

/** How many services `mesh init --template large` generates when not told. */
export const DEFAULT_LARGE_SERVICES = 100

/**
 * `<package root>/templates`, found by walking up from this module to the nearest
 * package.json, so it works from src/ (tests) and dist/ (the installed CLI) alike.
 */
export function templatesDir(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url))
  for (;;) {
    if (existsSync(path.join(dir, 'package.json'))) return path.join(dir, 'templates')
    const parent = path.dirname(dir)
    if (parent === dir) throw new MeshError('MESH_TEMPLATES_MISSING', `cannot find the package root above ${fileURLToPath(import.meta.url)}.`)
    dir = parent
  }
}

/** Every template, by name. A folder without a template.json is still listed, with an empty description. */
export async function listTemplates(): Promise<TemplateInfo[]> {
  const root = templatesDir()
  const entries = await readdir(root, {withFileTypes: true}).catch(() => [])
  const templates: TemplateInfo[] = []
  for (const entry of entries) {
    if (!entry.isDirectory() || entry.name.startsWith('.')) continue
    templates.push({name: entry.name, ...(await describe(path.join(root, entry.name)))})
  }
  for (const [name, {description}] of Object.entries(GENERATED)) templates.push({name, description})
  return templates.sort((a, b) => a.name.localeCompare(b.name))
}

/** Options of a generated template (`large`); a copied template takes none. */
export type GeneratorOptions = Partial<LargeOptions>

/**
 * Copies (or generates) template `name` into targetDir (created if absent) and returns the
 * written files, relative to targetDir with `/` separators. Without force, writes nothing if
 * any of them already exists.
 */
export async function writeTemplate(
  name: string,
  targetDir: string,
  {force = false, generator = {}}: {force?: boolean; generator?: GeneratorOptions} = {},
): Promise<string[]> {
  const known = await listTemplates()
  if (!known.some((t) => t.name === name)) {
    const names = known.map((t) => t.name).join(', ') || '(none)'
    throw new MeshError('MESH_TEMPLATE_NOT_FOUND', `template "${name}" does not exist. Known templates: ${names}`, {
      hints: ['Run `mesh init --template NAME` with one of them.'],
    })
  }
  const generate = Object.hasOwn(GENERATED, name) ? GENERATED[name] : undefined
  const given = Object.entries(generator).filter(([, v]) => v !== undefined).map(([k]) => `--${k}`)
  if (!generate && given.length > 0) {
    throw new MeshError('MESH_BAD_FLAG', `${given.join(', ')} ${given.length === 1 ? 'applies' : 'apply'} to a generated template (${Object.keys(GENERATED).join(', ')}), not to "${name}", which is copied as it is.`, {
      hints: [`Use ${given.length === 1 ? 'it' : 'them'} with \`mesh init --template large\`, or leave ${given.length === 1 ? 'it' : 'them'} out.`],
    })
  }
  // Generated before anything is checked or written, so a bad option writes nothing.
  const generated = generate?.files({...generator, services: generator.services ?? DEFAULT_LARGE_SERVICES})
  const source = path.join(templatesDir(), name)
  const files = generated ? Object.keys(generated).sort() : (await filesUnder(source)).filter((file) => file !== META_FILE)

  if (!force) {
    const existing = files.filter((file) => existsSync(path.join(targetDir, file)))
    if (existing.length > 0) {
      const others = existing.length > 1 ? ` (and ${existing.length - 1} more: ${existing.slice(1).join(', ')})` : ''
      throw new MeshError('MESH_FILE_EXISTS', `${path.join(targetDir, existing[0])} already exists${others}; nothing was written. Use --force to overwrite.`, {
        hints: ['Run `mesh init --force` to overwrite, or run `mesh init` in an empty directory.'],
      })
    }
  }

  for (const file of files) {
    const to = path.join(targetDir, file)
    await mkdir(path.dirname(to), {recursive: true})
    if (generated) await writeFile(to, generated[file])
    else await copyFile(path.join(source, file), to)
  }
  await pointAtSchema(path.join(targetDir, 'mesh.yaml'))
  return files
}

/**
 * Where meshsim is not installed in the project (a global install, a clone), the
 * modeline's relative path finds nothing: point it at this package's own schema instead,
 * an absolute path that holds on this machine.
 */
async function pointAtSchema(meshFile: string): Promise<void> {
  const relative = SCHEMA_MODELINE.slice(SCHEMA_MODELINE.indexOf('=') + 1)
  const own = path.join(path.dirname(templatesDir()), SCHEMA_FILE)
  if (!existsSync(meshFile) || existsSync(path.join(path.dirname(meshFile), relative)) || !existsSync(own)) return
  const text = await readFile(meshFile, 'utf8')
  if (text.startsWith(`${SCHEMA_MODELINE}\n`)) await writeFile(meshFile, text.replace(relative, own))
}

async function describe(dir: string): Promise<Omit<TemplateInfo, 'name'>> {
  try {
    const meta = JSON.parse(await readFile(path.join(dir, META_FILE), 'utf8')) as {description?: unknown; next?: unknown}
    return {description: typeof meta.description === 'string' ? meta.description : '', ...(typeof meta.next === 'string' ? {next: meta.next} : {})}
  } catch {
    return {description: ''}
  }
}

/** Files below dir, relative, `/`-separated, sorted; skips what a user's tree leaves behind. */
async function filesUnder(dir: string, prefix = ''): Promise<string[]> {
  const out: string[] = []
  for (const entry of await readdir(dir, {withFileTypes: true})) {
    if (entry.name === 'node_modules' || entry.name === '.mesh') continue
    const rel = prefix ? `${prefix}/${entry.name}` : entry.name
    if (entry.isDirectory()) out.push(...(await filesUnder(path.join(dir, entry.name), rel)))
    else if (entry.isFile()) out.push(rel)
  }
  return out.sort()
}
