// Exit codes are the CLI's contract (docs/cli.md, "Exit codes"): 2 for bad input, a name
// that does not exist or a request refused as things stand; 3 when no mesh is running;
// 1 only when the mesh itself failed. Every command's error paths, through the real CLI.
import {readFileSync, writeFileSync} from 'node:fs'
import path from 'node:path'
import {afterAll, beforeAll, describe, expect, test} from 'vitest'
import {EXIT_BY_CODE} from '../../src/cli/mesh-command.js'
import {downMesh, mesh, meshDir, ROOT, upMesh} from '../helpers/mesh.js'
import {sourceFiles} from '../helpers/repo-files.js'

const NOT_RUNNING = 3
const BAD_INPUT = 2

test('every error code thrown anywhere in src/ has its exit code decided', () => {
  const thrown = new Set<string>()
  for (const file of sourceFiles(path.join(ROOT, 'src'))) {
    const text = readFileSync(file, 'utf8')
    for (const m of text.matchAll(/(?:MeshError\(\s*|code: |\?\? )'(MESH_[A-Z_]+)'/g)) thrown.add(m[1])
  }
  expect(thrown.size).toBeGreaterThan(20)
  expect([...thrown].filter((code) => !(code in EXIT_BY_CODE))).toEqual([])
})

const minimal = (port: number) => `
name: exit-codes
ingress:
  port: ${port}
  routes: [{prefix: /, service: hello}]
services:
  hello:
    dependsOn: [world]
    simulate: {latency: 1ms, calls: [{service: world, probability: 1, path: /}]}
  world:
    simulate: {latency: 1ms}
`

type Run = Awaited<ReturnType<typeof mesh>>

/**
 * Starts every run of `runs` in `dir`, three at a time (each is a node start-up: tenths of a
 * second, seconds on a loaded machine, and the runs do not depend on each other); each test
 * then awaits its own, keyed by its arguments.
 */
function runAhead(dir: string, runs: string[][]): Map<string, Promise<Run>> {
  const started = new Map<string, Promise<Run>>()
  const lanes: Array<Promise<unknown>> = [Promise.resolve(), Promise.resolve(), Promise.resolve()]
  runs.forEach((args, i) => {
    const key = args.join(' ')
    if (started.has(key)) throw new Error(`mesh ${key} is listed twice`)
    const run = lanes[i % lanes.length].then(() => mesh(dir, args))
    lanes[i % lanes.length] = run.catch(() => undefined)
    started.set(key, run)
  })
  return started
}

/** What each command is run with when no mesh is running: every command must be listed. */
const WITHOUT_A_MESH: Record<string, {args: string[]; exit: number}> = {
  apply: {args: ['apply'], exit: NOT_RUNNING},
  // The CA outlives the mesh, but no mesh ever ran in this directory.
  ca: {args: ['ca'], exit: BAD_INPUT},
  certs: {args: ['certs'], exit: NOT_RUNNING},
  'certs:rotate': {args: ['certs', 'rotate'], exit: NOT_RUNNING},
  canary: {args: ['canary', 'world', '--to', 'v2'], exit: NOT_RUNNING},
  chaos: {args: ['chaos', 'fixtures/none.yaml'], exit: BAD_INPUT},
  'clear-faults': {args: ['clear-faults', '--all'], exit: NOT_RUNNING},
  config: {args: ['config', '-f', 'missing.yaml'], exit: BAD_INPUT},
  down: {args: ['down'], exit: 0},
  exec: {args: ['exec', 'world', '--', 'true'], exit: NOT_RUNNING},
  // Needs no mesh, only a mesh.yaml: a namespace that is no DNS label is bad input.
  'export:kubernetes': {args: ['export', 'kubernetes', '--namespace', 'Not_A_Label'], exit: BAD_INPUT},
  faults: {args: ['faults'], exit: NOT_RUNNING},
  history: {args: ['history'], exit: NOT_RUNNING},
  // Needs no mesh: a compose file, and there is none here.
  'import:compose': {args: ['import', 'compose', 'missing-compose.yaml'], exit: BAD_INPUT},
  // Needs no mesh, only a mesh.yaml: a manifest that is not there is bad input.
  'import:istio': {args: ['import', 'istio', 'missing-istio.yaml'], exit: BAD_INPUT},
  init: {args: ['init'], exit: BAD_INPUT},
  'inject-fault': {args: ['inject-fault', 'world', '--delay', '10ms'], exit: NOT_RUNNING},
  load: {args: ['load', 'ingress', '--rps', '1', '--duration', '1s'], exit: NOT_RUNNING},
  logs: {args: ['logs', 'nosuch'], exit: BAD_INPUT},
  restart: {args: ['restart'], exit: NOT_RUNNING},
  rollback: {args: ['rollback', 'world'], exit: NOT_RUNNING},
  rollout: {args: ['rollout', 'world', '--to', 'v2'], exit: NOT_RUNNING},
  schema: {args: ['schema', '--nosuch'], exit: BAD_INPUT},
  // Needs no mesh, only a mesh.yaml.
  sim: {args: ['sim', '-f', 'missing.yaml'], exit: BAD_INPUT},
  start: {args: ['start'], exit: NOT_RUNNING},
  stat: {args: ['stat'], exit: NOT_RUNNING},
  status: {args: ['status'], exit: NOT_RUNNING},
  stop: {args: ['stop'], exit: NOT_RUNNING},
  tap: {args: ['tap', '--count', '1'], exit: NOT_RUNNING},
  top: {args: ['top', '--once'], exit: NOT_RUNNING},
  // Needs no mesh (it reads .mesh/jwt-issuer.json): a claim that is no NAME=VALUE is bad input.
  token: {args: ['token', '--claim', 'novalue'], exit: BAD_INPUT},
  trace: {args: ['trace', 'deadbeef'], exit: NOT_RUNNING},
  traces: {args: ['traces'], exit: NOT_RUNNING},
  up: {args: ['up', 'nosuch'], exit: BAD_INPUT},
  validate: {args: ['validate', '-f', 'missing.yaml'], exit: BAD_INPUT},
}

const BAD_INPUT_WITHOUT_A_MESH: Array<[string, string[]]> = [
  ['an unknown command', ['nosuch']],
  ['an unknown flag', ['status', '--nosuch']],
  ['a missing argument', ['trace']],
  ['a flag value not among its options', ['stat', '--by', 'nosuch']],
  ['mesh.yaml invalid', ['validate', '-f', 'bad.yaml']],
  ['a template that does not exist', ['init', '--dir', 'elsewhere', '--template', 'nosuch']],
  ['mesh top into a pipe', ['top']],
  ['a duration that is no duration', ['stat', '--window', 'soon']],
  ['a fault with two kinds', ['inject-fault', 'world', '--delay', '1s', '--abort', '503']],
]
const UNITLESS_DURATION = ['inject-fault', 'world', '--delay', '3']
const JSON_ERROR = ['status', '--json']
const CONFIG_OF_BAD = ['config', '-f', 'bad.yaml']

describe('without a mesh', () => {
  let runs: Map<string, Promise<Run>>
  const run = (args: string[]) => runs.get(args.join(' '))!
  beforeAll(() => {
    const dir = meshDir(minimal(1))
    writeFileSync(path.join(dir, 'bad.yaml'), 'name: BAD\nservices: {}\n')
    runs = runAhead(dir, [...Object.values(WITHOUT_A_MESH).map((c) => c.args), ...BAD_INPUT_WITHOUT_A_MESH.map(([, args]) => args), UNITLESS_DURATION, JSON_ERROR, CONFIG_OF_BAD])
  })

  test('the table covers every command', () => {
    const manifest = JSON.parse(readFileSync(path.join(ROOT, 'oclif.manifest.json'), 'utf8')) as {commands: Record<string, unknown>}
    expect(Object.keys(WITHOUT_A_MESH).sort()).toEqual(Object.keys(manifest.commands).sort())
  })

  test.each(Object.entries(WITHOUT_A_MESH))('mesh %s', async (_, {args, exit}) => {
    const r = await run(args)
    expect(r.exitCode, `mesh ${args.join(' ')}\n${r.stdout}${r.stderr}`).toBe(exit)
  })

  test.each(BAD_INPUT_WITHOUT_A_MESH)('%s: exit 2', async (_, args) => {
    const r = await run(args)
    expect(r.exitCode, `mesh ${args.join(' ')}\n${r.stdout}${r.stderr}`).toBe(BAD_INPUT)
  })

  test('a broken mesh.yaml: every command points to `mesh validate`, except `mesh validate` itself', async () => {
    const validate = await run(['validate', '-f', 'bad.yaml'])
    expect(validate.stderr).toContain('Fix these in bad.yaml.')
    expect(validate.stderr).not.toContain('mesh validate')
    const config = await run(CONFIG_OF_BAD)
    expect(config.exitCode).toBe(BAD_INPUT)
    expect(config.stderr).toContain('`mesh validate` checks it without starting anything.')
  })

  test('a duration without its unit is bad input that names the units, not 3 ms in silence', async () => {
    const r = await run(UNITLESS_DURATION)
    expect(r.exitCode).toBe(BAD_INPUT)
    expect(r.stderr).toContain('did you mean 3ms or 3s?')
  })

  test('--json errors say so on stdout with the same exit code', async () => {
    const r = await run(JSON_ERROR)
    expect(r.exitCode).toBe(NOT_RUNNING)
    expect(JSON.parse(r.stdout).error.code).toBe('MESH_NOT_RUNNING')
  })
})

const BAD_INPUT_WITH_A_MESH: Array<[string, string[]]> = [
  ['a trace that is not in the store', ['trace', 'deadbeef']],
  ['access logs while they are off', ['logs', '--access']],
  ['a fault on a service not in the mesh', ['inject-fault', 'nosuch', '--delay', '10ms']],
  ['a fault from a caller not in the mesh', ['inject-fault', 'world', '--delay', '10ms', '--from', 'nosuch']],
  ['clearing a fault that does not exist', ['clear-faults', 'f-nosuch']],
  ['a version that does not exist', ['rollout', 'world', '--to', 'v9']],
  ['a deploy to the version already serving', ['rollout', 'world', '--to', 'v1']],
  ['a rollback with nothing to roll back', ['rollback', 'world']],
  ['stopping a service not in the mesh', ['stop', 'nosuch']],
  ['restarting a service not in the mesh', ['restart', 'nosuch']],
  ['exec in a service not in the mesh', ['exec', 'nosuch', '--', 'true']],
  ['exec in an instance that does not exist', ['exec', 'world', '--instance', 'world-v1-9', '--', 'true']],
  ['history of a service not in the mesh', ['history', 'nosuch']],
  ['tap of a service not in the mesh', ['tap', 'nosuch', '--count', '1']],
  ['load on a service the ingress does not route to', ['load', 'nosuch', '--rps', '1', '--duration', '1s']],
  ['a chaos scenario that does not exist', ['chaos', 'nosuch.yaml']],
  ['rotating the certificate of a service not in the mesh', ['certs', 'rotate', 'nosuch']],
  ['a certificate fault of no known kind', ['inject-fault', 'world', '--cert', 'nosuch']],
]
const EXEC_EXIT_7 = ['exec', 'world', '--', 'sh', '-c', 'exit 7']

describe('with a mesh running', () => {
  let dir: string
  let runs: Map<string, Promise<Run>>
  const run = (args: string[]) => runs.get(args.join(' '))!
  beforeAll(async () => {
    ;({dir} = await upMesh(minimal))
    runs = runAhead(dir, [...BAD_INPUT_WITH_A_MESH.map(([, args]) => args), EXEC_EXIT_7])
  }, 90_000)
  afterAll(async () => {
    // Every run started ahead has ended before the mesh goes down (a test that failed early does not wait for its own).
    if (runs) await Promise.allSettled(runs.values())
    if (dir) await downMesh(dir)
  })

  test.each(BAD_INPUT_WITH_A_MESH)('%s: exit 2', async (_, args) => {
    const r = await run(args)
    expect(r.exitCode, `mesh ${args.join(' ')}\n${r.stdout}${r.stderr}`).toBe(BAD_INPUT)
  })

  test('exec exits with the command’s own code', async () => {
    const r = await run(EXEC_EXIT_7)
    expect(r.exitCode, r.stderr).toBe(7)
  })
})
