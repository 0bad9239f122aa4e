// The JSON Schema editors get (`mesh schema`, schema/mesh.schema.json) is generated from the
// checkers `mesh validate` runs. A standard validator (ajv) must accept every template and
// every mesh.yaml example in README and docs/, and refuse what the checker refuses.
import {execFileSync} from 'node:child_process'
import {mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {Ajv} from 'ajv'
import {describe, expect, test} from 'vitest'
import {parse} from 'yaml'
import {meshJsonSchema, SCHEMA_FILE, SCHEMA_MODELINE} from '../../src/sim/config/json-schema.js'
import {parseConfig} from '../../src/sim/config/load-config.js'
import {writeTemplate} from '../../src/sim/templates/templates.js'
import {BIN, ROOT} from '../helpers/mesh.js'
import {docPages} from '../helpers/repo-files.js'

const schema = meshJsonSchema()
const validate = new Ajv({strict: true, allowUnionTypes: true, allErrors: true}).compile(schema)
const errors = (doc: unknown) => (validate(doc) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message}`))

const templates = readdirSync(path.join(ROOT, 'templates')).map((name) => path.join(ROOT, 'templates', name, 'mesh.yaml'))

/** mesh.yaml examples: a whole file, its top-level parts, or one service's `policy:`. */
function asMeshFile(doc: Record<string, unknown>): Record<string, unknown> | undefined {
  const keys = Object.keys(doc)
  if (keys.length === 1 && keys[0] === 'policy') return {name: 'docs', services: {example: {simulate: {}, policy: doc.policy}}}
  if (keys.every((k) => ['name', 'ingress', 'faults', 'telemetry', 'security', 'functions', 'services'].includes(k))) return {name: 'docs', services: {example: {simulate: {}}}, ...doc}
  return undefined
}

function yamlExamples(): Array<[string, string]> {
  return docPages().flatMap((page) =>
    [...readFileSync(path.join(ROOT, page), 'utf8').matchAll(/^```yaml\n([\s\S]*?)^```/gm)].map((m, i): [string, string] => [`${page} #${i + 1}`, m[1]]),
  )
}

describe('the JSON Schema of mesh.yaml', () => {
  test.each(templates.map((t) => [path.relative(ROOT, t), t]))('accepts %s, which the checker accepts too, and names the schema on its first line', (_, file) => {
    const text = readFileSync(file, 'utf8')
    expect(text.split('\n')[0]).toBe(SCHEMA_MODELINE)
    expect(errors(parse(text))).toEqual([])
    expect(parseConfig(text, file, {}).issues.filter((i) => i.severity === 'error')).toEqual([])
  })

  test('README and docs/ have mesh.yaml examples to check', () => {
    expect(yamlExamples().length).toBeGreaterThanOrEqual(6)
  })

  test.each(yamlExamples())('accepts the example in %s', (where, text) => {
    const doc = asMeshFile(parse(text) as Record<string, unknown>)
    expect(doc, `${where}: a yaml block that is no part of mesh.yaml this test knows`).toBeDefined()
    expect(errors(doc)).toEqual([])
  })

  test.each([
    ['an unknown key', {name: 'x', services: {a: {simulate: {}, replica: 2}}}],
    ['a duration without its unit', {name: 'x', services: {a: {simulate: {}, policy: {timeout: 300}}}}],
    ['a duration that is no duration', {name: 'x', services: {a: {simulate: {latency: 'fast'}}}}],
    ['a load balancer that does not exist', {name: 'x', services: {a: {simulate: {}, policy: {loadBalancer: 'round_robin'}}}}],
    ['a service name with capitals', {name: 'x', services: {Api: {simulate: {}}}}],
    ['no services', {name: 'x'}],
    ['a port out of range', {name: 'x', ingress: {port: 70000}, services: {a: {simulate: {}}}}],
    ['a latency key of another distribution', {name: 'x', services: {a: {simulate: {latency: {distribution: 'exponential', p50: '5ms'}}}}}],
    ['a latency mean without its distribution', {name: 'x', services: {a: {simulate: {latency: {mean: '5ms'}}}}}],
    ['a fault key that does not exist', {name: 'x', services: {a: {simulate: {}}}, faults: {inject: [{service: 'a', delai: '1s'}]}}],
  ])('refuses %s, as the checker does', (_, doc) => {
    expect(errors(doc)).not.toEqual([])
    const text = JSON.stringify(doc)
    expect(parseConfig(text, '/tmp/mesh.yaml', {}).issues.filter((i) => i.severity === 'error')).not.toEqual([])
  })

  test('the package ships the same schema (npm run build writes it), and mesh schema prints it', () => {
    expect(JSON.parse(readFileSync(path.join(ROOT, SCHEMA_FILE), 'utf8'))).toEqual(schema)
    expect(JSON.parse(execFileSync(process.execPath, [BIN, 'schema'], {encoding: 'utf8'}))).toEqual(schema)
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {files: string[]}
    expect(pkg.files).toContain(SCHEMA_FILE.split('/')[0])
  })
})

describe('mesh init points the editor at a schema that is there', () => {
  test('a project with meshsim installed keeps the relative path, which holds for everyone who clones it', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'meshsim-schema-'))
    mkdirSync(path.join(dir, 'node_modules/meshsim/schema'), {recursive: true})
    writeFileSync(path.join(dir, 'node_modules/meshsim', SCHEMA_FILE), '{}')
    await writeTemplate('minimal', dir)
    expect(readFileSync(path.join(dir, 'mesh.yaml'), 'utf8').split('\n')[0]).toBe(SCHEMA_MODELINE)
  })

  test('elsewhere (meshsim installed globally) it names the copy of the package running by its absolute path', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'meshsim-schema-'))
    await writeTemplate('minimal', dir)
    expect(readFileSync(path.join(dir, 'mesh.yaml'), 'utf8').split('\n')[0]).toBe(`# yaml-language-server: $schema=${path.join(ROOT, SCHEMA_FILE)}`)
  })
})
