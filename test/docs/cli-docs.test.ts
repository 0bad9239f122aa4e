// docs/cli.md and `mesh --help` say the same thing: every command oclif knows has a section
// there, each with exactly the command's flags, and every `mesh COMMAND --flag` written in
// README.md or docs/ names a real command and one of its flags. oclif's manifest (written by
// `npm run build` from the commands' own flag definitions) is the source.
import {existsSync, readFileSync} from 'node:fs'
import path from 'node:path'
import {describe, expect, test} from 'vitest'
import {ROOT} from '../helpers/mesh.js'
import {docPages} from '../helpers/repo-files.js'

interface ManifestFlag {
  char?: string
  hidden?: boolean
}
interface ManifestCommand {
  id: string
  aliases: string[]
  flags: Record<string, ManifestFlag>
}

function manifest(): Record<string, ManifestCommand> {
  const file = path.join(ROOT, 'oclif.manifest.json')
  if (!existsSync(file)) throw new Error(`${file} is missing: run \`npm run build\` first (npm test does).`)
  return (JSON.parse(readFileSync(file, 'utf8')) as {commands: Record<string, ManifestCommand>}).commands
}

const commands = manifest()
const byName = new Map<string, ManifestCommand>()
for (const c of Object.values(commands)) for (const name of [c.id, ...c.aliases]) byName.set(name.replaceAll(':', ' '), c)

/** Flags a command documents in its own list: all but the two every command has (docs/cli.md's "Common" section). */
const ownFlags = (c: ManifestCommand) => Object.entries(c.flags).filter(([name, f]) => !f.hidden && name !== 'file' && name !== 'json')

interface Section {
  id: string
  synopsis: string
  body: string
  /** Flag names from the `Flags:` list, with the short form each bullet gives. */
  listed: Map<string, string | undefined>
}

/** The `### mesh ID` sections of docs/cli.md. */
function sections(markdown: string): Section[] {
  const parts = markdown.split(/^### mesh /m).slice(1)
  return parts.map((part) => {
    const [heading, ...rest] = part.split('\n')
    const body = rest.join('\n').split(/^## /m)[0]
    const synopsis = /^`([^`]+)`/m.exec(body)?.[1] ?? ''
    const listed = new Map<string, string | undefined>()
    const list = body.split(/^Flags:\s*$/m)[1] ?? ''
    for (const bullet of list.split(/^- /m).slice(1)) {
      // The label is the code spans before the first "`:"; what follows is prose.
      const label = bullet.slice(0, bullet.indexOf('`:') + 1)
      for (const span of label.match(/`[^`]+`/g) ?? []) {
        const long = /--([a-z][\w-]*)/.exec(span)?.[1]
        if (long) listed.set(long, /(?:^`|\s)-([a-zA-Z]),/.exec(span)?.[1])
      }
    }
    return {id: heading.trim(), synopsis, body, listed}
  })
}

const cliDoc = readFileSync(path.join(ROOT, 'docs/cli.md'), 'utf8')
const documented = sections(cliDoc)

describe('docs/cli.md against oclif', () => {
  test('every command has a section, and every section is a command', () => {
    const ids = Object.values(commands).map((c) => c.id.replaceAll(':', ' '))
    expect(documented.map((s) => s.id).sort()).toEqual([...ids].sort())
  })

  test.each(documented.map((s) => [s.id, s] as const))('mesh %s: the Flags list is exactly its flags, with their short forms', (id, section) => {
    const command = byName.get(id)!
    const expected = new Map(ownFlags(command).map(([name, f]) => [name, f.char]))
    expect(Object.fromEntries(section.listed)).toEqual(Object.fromEntries(expected))
  })

  test.each(documented.map((s) => [s.id, s] as const))('mesh %s: the synopsis names the command, only its flags, and [--json] exactly when it has one', (id, section) => {
    const command = byName.get(id)!
    expect(section.synopsis.startsWith(`mesh ${id}`), section.synopsis).toBe(true)
    for (const flag of section.synopsis.matchAll(/--([a-z][\w-]*)/g)) expect(Object.keys(command.flags), `${id}: ${section.synopsis}`).toContain(flag[1])
    expect(section.synopsis.includes('[--json]'), section.synopsis).toBe('json' in command.flags)
    for (const alias of command.aliases) expect(section.body).toContain(`mesh ${alias}`)
  })

  test('every command but init (which writes into --dir), schema (which reads none) and import compose (which writes --out) has -f/--file, spelled --file alone only where -f means something else', () => {
    for (const c of Object.values(commands)) {
      if (c.id === 'init' || c.id === 'schema' || c.id === 'import:compose') {
        expect(c.flags.file).toBeUndefined()
        continue
      }
      expect(c.flags.file, c.id).toBeDefined()
      if (c.flags.file.char !== 'f') expect(Object.values(c.flags).some((f) => f.char === 'f'), c.id).toBe(true)
    }
  })
})

const pages = docPages()

/** Code a page shows: inline spans and fenced blocks' lines. */
function codeIn(markdown: string): {text: string; inline: boolean}[] {
  const out: {text: string; inline: boolean}[] = []
  const prose = markdown.replace(/^```[^\n]*\n([\s\S]*?)^```/gm, (_, block: string) => {
    for (const line of block.split('\n')) out.push({text: line, inline: false})
    return ''
  })
  for (const m of prose.matchAll(/`([^`\n]+)`/g)) out.push({text: m[1], inline: true})
  return out
}

describe('every `mesh COMMAND --flag` in README.md and docs/', () => {
  test.each(pages)('%s', (page) => {
    const problems: string[] = []
    for (const {text, inline} of codeIn(readFileSync(path.join(ROOT, page), 'utf8'))) {
      for (const m of text.matchAll(/(?:^|[\s($])mesh ([a-z][a-z-]*)((?:[^#|;&),`]*))/g)) {
        // A topic's command is two words (`mesh import compose`, `mesh certs rotate`).
        const next = /^\s*([a-z][a-z-]*)/.exec(m[2])?.[1]
        const command = (next && byName.get(`${m[1]} ${next}`)) || byName.get(m[1])
        if (!command) {
          // Prose in a block ("mesh daemon") is not a command; a span that starts with `mesh WORD` is.
          if (inline && text.startsWith(`mesh ${m[1]}`)) problems.push(`\`${text}\`: mesh has no command "${m[1]}"`)
          continue
        }
        for (const flag of m[2].matchAll(/(?:^|\s|\[)--([a-z][\w-]*)/g)) {
          if (!(flag[1] in command.flags) && flag[1] !== 'help') problems.push(`\`${text.trim()}\`: mesh ${command.id} has no --${flag[1]}`)
        }
      }
    }
    expect(problems).toEqual([])
  })
})
