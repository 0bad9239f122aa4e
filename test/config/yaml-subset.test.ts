// The subset reader (yaml-subset.ts) must give exactly the yaml library's AST, offsets
// included, or nothing (and the library reads the file). Each input here is read both
// ways and the two trees compared node by node; the checks' issues (file:line:column
// path: message) are compared too, through parseConfig with and without the subset reader.
import {readFileSync, readdirSync} from 'node:fs'
import path from 'node:path'
import {describe, expect, test} from 'vitest'
import {isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, type Document} from 'yaml'
import {duplicateKeys} from '../../src/sim/config/checker.js'
import {substitutable} from '../../src/sim/config/interpolate.js'
import {parseConfig} from '../../src/sim/config/load-config.js'
import {parseSubset} from '../../src/sim/config/yaml-subset.js'
import {SeededRandom, seedFrom} from '../../src/sim/time/random.js'
import {ROOT} from '../helpers/mesh.js'
import {docPages} from '../helpers/repo-files.js'

const OPTIONS = {prettyErrors: false, uniqueKeys: false}

/** Every node as one line: kind, value and its JS type, source, style, number format, where it starts. */
function shape(doc: Document): string[] {
  const out: string[] = []
  const walk = (node: unknown, depth: number): void => {
    const pad = ' '.repeat(depth)
    if (isMap(node) || isSeq(node)) {
      out.push(`${pad}${isMap(node) ? 'map' : 'seq'}${node.flow ? ' flow' : ''} @${node.range?.[0]}`)
      for (const item of node.items) {
        if (isPair(item)) {
          out.push(`${pad} pair`)
          walk(item.key, depth + 2)
          walk(item.value, depth + 2)
        } else walk(item, depth + 1)
      }
    } else if (isScalar(node)) {
      const s = node as typeof node & {minFractionDigits?: number}
      out.push(`${pad}${typeof s.value} ${JSON.stringify(s.value)} source=${JSON.stringify(s.source)} ${s.type} ${s.format ?? ''} ${s.minFractionDigits ?? ''} @${s.range?.[0]}`)
    } else out.push(`${pad}${String(node)}`)
  }
  walk(doc.contents, 0)
  return out
}

function bothWays(source: string) {
  const subsetLines = new LineCounter()
  const libraryLines = new LineCounter()
  const read = parseSubset(source, subsetLines, OPTIONS)
  const subset = read?.doc
  const library = parseDocument(source, {lineCounter: libraryLines, ...OPTIONS})
  return {read, subset, library, subsetLines, libraryLines}
}

/** Read by the subset reader, and the same as the library's in every node and line. */
function expectSame(source: string): void {
  const {read, subset, library, subsetLines, libraryLines} = bothWays(source)
  expect([...library.errors, ...library.warnings].map((e) => e.message)).toEqual([])
  expect(subset, 'the subset reader left this to the library').toBeDefined()
  expect(shape(subset!)).toEqual(shape(library))
  expect(subsetLines.lineStarts).toEqual(libraryLines.lineStarts)
  // What it finds on the way: the keys given twice, the values with a $ (and their paths).
  const at = (node: {range?: [number, number, number] | null}) => node.range![0]
  expect(read!.duplicateKeys.map(at).sort((a, b) => a - b)).toEqual(duplicateKeys(library).map(at).sort((a, b) => a - b))
  expect(read!.substitutable.map(({node, path}) => [at(node), path])).toEqual(substitutable(library).map(({node, path}) => [at(node), path]))
  expectSameIssues(source)
}

/** The checks report the same issues at the same line:column either way. */
function expectSameIssues(source: string): void {
  const fast = parseConfig(source, '/work/demo/mesh.yaml', {PORT: '8080'})
  const slow = parseConfig(source, '/work/demo/mesh.yaml', {PORT: '8080'}, {subset: false})
  expect(fast.issues).toEqual(slow.issues)
  expect(fast.config).toEqual(slow.config)
  expect(fast.leftForInstances).toEqual(slow.leftForInstances)
  // `mesh config` prints the file substituted, comments kept: the library's document either way.
  expect(fast.resolved).toEqual(slow.resolved)
}

/** Left to the library, which still gives its usual result. */
function expectLibrary(source: string): void {
  expect(bothWays(source).subset).toBeUndefined()
  expectSameIssues(source)
}

const y = (...lines: string[]) => lines.join('\n') + '\n'

const templates = readdirSync(path.join(ROOT, 'templates')).map((name) => path.join('templates', name, 'mesh.yaml'))
const examples = docPages().flatMap((page) =>
  [...readFileSync(path.join(ROOT, page), 'utf8').matchAll(/^```yaml\n([\s\S]*?)^```/gm)].map((m, i): [string, string] => [`${page} #${i + 1}`, m[1]]),
)

describe('the subset reader gives the yaml library’s AST', () => {
  test.each(templates)('template %s', (file) => expectSame(readFileSync(path.join(ROOT, file), 'utf8')))

  test.each(examples)('the example in %s', (_, text) => expectSame(text))

  test.each([
    ['quoted keys and values', y('"name": \'demo\'', 'services:', '  "web":', "    env: {'A B': \"x\\ty \\u00e9 \\x41 \\\\ \\\"q\\\"\", 'it''s': '', \"\": \"\"}", '    command: \'node "a.js"\'')],
    ['plain scalars with : and # inside', y('name: a:b', 'services:', '  web:', '    command: node x.js --url=http://h:1/#frag  # a comment', '    env: {A: a#b, B: "c # d"}')],
    ['numbers, booleans and nulls as the core schema reads them', y('a: 0x1F', 'b: 1.50', 'c: 1e3', 'd: .inf', 'e: ~', 'f: True', 'g: 0o17', 'h: -0', 'i: null', 'j: +12', 'k: 1_000', 'l: .5', 'm: 2s', 'n: FALSE', '"o": "1"', '1: one', 'true: yes', 'null: nothing')],
    ['empty values: key, dash, flow', y('a:', 'b:   # comment', 'c:', '  -', '  - # comment', '  -   ', 'd: {x: , y: [ ], z: { }}', 'e:')],
    ['comments everywhere', y('# head', '', 'name: demo # trailing', '  # indented', 'services:   ', '# at column 0 inside', '  web:  # after a key', '    # before a child', '    command: x', '    env: {A: b, # inside flow', '      C: d}', '', '# tail')],
    ['block literal and folded scalars, with each chomping', y('a: |', '  line one', '    indented', '', '  after blank', 'b: |-', '  strip', '', 'c: |+', '  keep', '', '', 'd: >', '  folded', '  lines', '', '  para', 'e: >-', '  x', 'f: |  # comment', '  #not a comment', 'g: 1')],
    ['a block scalar in a list and under a compact mapping', y('l:', '  - |', '    one', '  - k: >', '      two', '    j: 3', '  - last')],
    ['lists at their key’s indent, nested and compact', y('a:', '- 1', '- - 2', '  - 3', '- k: v', '  j: w', '-   - deep', 'b: [1, [2, {c: 3}], "4"]')],
    ['flow collections over several lines', y('a: {x: 1,', '  y: [2,', '    3], z: "q"', '  }', 'b: [', '  1, 2', ' ]')],
    ['CRLF line ends', 'name: demo\r\nservices:\r\n  web:\r\n    command: |\r\n      node a.js\r\n    env: {A: "b"}\r\n'],
    ['a byte order mark', '\ufeffname: demo\nservices:\n  web: {command: x}\n'],
    ['duplicate keys, reported at the second', y('name: a', 'services:', '  web: {command: x}', '  web: {command: y}', 'name: b')],
    ['schema errors at the right line:column', y('name: demo', 'services:', '  Web:', '    replicas: three', '    simulate: {latency: 5}', '    policy: {timeout: 300, retries: {attempts: -1}}', '  api:', '    command: $CMD', '    port: ${PORT}', '    dependsOn: [nope]', 'ingress: {port: 70000}')],
    ['no final line break, and long runs of blank lines', 'name: demo\n\n\n\nservices:\n  web: {command: x}'],
    ['keys of a kind the checks refuse', y('name: demo', 'services:', '  1: {command: x}', '  null: {command: y}', '  "": {command: z}')],
    ['a document that is one scalar', y('just text')],
    ['a top-level list', y('- name: demo')],
    ['keys and values that start like indicators', y('-x: -1', '?y: ?z', ':w: :v', 'l: [-1, -a, ?b]', 'a b  : c d  ', '"x: y": "z"', "'#': '&*!'", 'url: http://a:8/b')],
    ['lists of mappings with comments between items', y('routes:', '  # first', '  - {prefix: /a, service: a}', '', '  # second', '  - prefix: /b', '    # inside', '    service: b', '  -', '    prefix: /c')],
    ['a long key', y(`${'k'.repeat(1000)}: v`)],
  ])('%s', (_, source) => expectSame(source))
})

describe('what the subset leaves to the library, which reads it as ever', () => {
  test.each([
    ['anchors and aliases', y('name: demo', 'services:', '  web: &base {command: x}', '  api: *base')],
    ['tags', y('name: !!str demo', 'services: {web: {command: x}}')],
    ['a --- document start', y('---', 'name: demo', 'services: {web: {command: x}}')],
    ['two documents', y('name: a', '---', 'name: b')],
    ['a %YAML directive', y('%YAML 1.2', '---', 'name: demo')],
    ['a tab in the indentation', 'name: demo\nservices:\n\tweb: {command: x}\n'],
    ['a tab after a colon', 'name:\tdemo\nservices: {web: {command: x}}\n'],
    ['a plain scalar over two lines', y('name: demo', 'services:', '  web:', '    command: node', '      a.js')],
    ['a quoted scalar over two lines', y('name: "demo', '  two"', 'services: {web: {command: x}}')],
    ['an explicit ? key', y('? name', ': demo')],
    ['a flow collection as a key', y('{a: 1}: x')],
    ['{a, b} without values', y('a: {x, y}')],
    ['[a: b] pairs in a list', y('a: [x: 1]')],
    ['a trailing comma', y('a: [1, 2, ]')],
    ['a nested mapping on one line (an error)', y('a: b: c')],
    ['a mapping indented under a scalar (an error)', y('a: b', '  c: d')],
    ['a flow continuation not indented past its key (an error)', y('a:', '  x: {b: 1,', '  c: 2}')],
    ['a comment without a space before it (an error)', y('a: "x"#c')],
    ['an unclosed quote (an error)', y('a: "x', 'b: 1')],
    ['an unclosed flow collection (an error)', y('a: [1, 2', 'b: 1')],
    ['an explicit block scalar indent', y('a: |2', '   x')],
    ['a folded scalar with a more-indented line', y('a: >', '  x', '    y', '  z')],
    ['an invalid escape (an error)', y('a: "\\q"')],
    ['a lone CR line break', 'name: demo\rservices: {web: {command: x}}\n'],
    ['a lone CR in a comment', 'name: demo # a\rb\nservices: {web: {command: x}}\n'],
    ['an empty file', ''],
    ['only comments', y('# nothing')],
    ['a map indented at the top', y('  name: demo')],
    ['an implicit key past 1024 characters (an error)', y(`${'k'.repeat(1100)}: v`)],
  ])('%s', (_, source) => expectLibrary(source))
})

describe('files with one character changed read the same either way (or go to the library)', () => {
  // Deleting, doubling or inserting one character where a mistake would be made breaks the
  // YAML in every way a hand-edited file breaks: each result must be the library's.
  const inserts = [' ', '\n', ':', '-', '#', '"', "'", '{', '}', '[', ']', ',', '|', '>', '&', '*', '!', '?', '\r\n', '  ']
  const tricky = readFileSync(path.join(ROOT, 'templates/shop/mesh.yaml'), 'utf8').replace(/\n/g, '\r\n') + y('a: |', '  one', '    two', '', 'b: |-', '  x', 'c: >', '  p', '  q', '', '  r', 'd:', '- {x: 1,', '  y: [2, "q\\t", \'it\'\'s\']}', '- - k: v', '    j: ', "e: {x: , y: [ ], z: { }}")
  const inputs: Array<[string, string]> = [...templates.map((file): [string, string] => [file, readFileSync(path.join(ROOT, file), 'utf8')]), ['the shop template with CRLF, block scalars and flow collections', tricky]]
  test.each(inputs)('%s, 400 mutations', (name, text) => {
    const random = new SeededRandom(seedFrom(name))
    let read = 0
    for (let i = 0; i < 400; i++) {
      const at = random.int(text.length)
      const kind = random.int(3)
      const mutated = kind === 0 ? text.slice(0, at) + text.slice(at + 1) : kind === 1 ? text.slice(0, at) + text[at] + text.slice(at) : text.slice(0, at) + inserts[random.int(inserts.length)] + text.slice(at)
      const {subset, library} = bothWays(mutated)
      if (!subset) continue
      read++
      expect([...library.errors, ...library.warnings].map((e) => e.message), mutated).toEqual([])
      expect(shape(subset), mutated).toEqual(shape(library))
    }
    // Most single-character changes still leave valid YAML the subset reads.
    expect(read).toBeGreaterThan(100)
  })
})
