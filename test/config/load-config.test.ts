import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import {join, relative} from 'node:path'
import {afterAll, describe, expect, it} from 'vitest'
import {ConfigError, formatIssue} from '../../src/sim/config/config-error.js'
import {loadConfig, loadConfigWithWarnings, parseConfig} from '../../src/sim/config/load-config.js'
import type {SimulateConfig} from '../../src/sim/config/types.js'
import {MeshError} from '../../src/sim/errors.js'
import {seedFrom} from '../../src/sim/time/random.js'
import {DIR, FILE, parsed, problems, yaml} from './helpers.js'

// DESIGN.md's sketch, with the key names of the schema (consecutive5xxErrors).
const SKETCH = yaml(
  'name: shop',
  'ingress: { port: 8000, routes: [{ prefix: /, service: frontend }] }',
  'services:',
  '  frontend:',
  '    command: node server.js',
  '    dependsOn: [catalog, cart]',
  '    health: { path: /healthz }',
  '  catalog:',
  '    replicas: 3',
  '    versions:',
  '      v1: { simulate: { latency: { p50: 20ms, p99: 120ms }, errorRate: 0.001,',
  '                        calls: [{ service: inventory, probability: 0.5 }] } }',
  '      v2: { simulate: { latency: { p50: 15ms, p99: 90ms } } }',
  '    policy:',
  '      loadBalancer: least-request',
  '      timeout: 1s',
  '      retries: { attempts: 3, perTryTimeout: 300ms, on: [5xx, reset, connect-failure],',
  '                 backoff: { base: 25ms, max: 250ms }, budget: { ratio: 0.2, minPerSecond: 10 } }',
  '      outlierDetection: { consecutive5xxErrors: 5, interval: 5s, baseEjectionTime: 30s, maxEjectionPercent: 50 }',
  '      circuitBreaker: { maxConnections: 100, maxPendingRequests: 50 }',
  '      rateLimit: { algorithm: token-bucket, rate: 200/s, burst: 50 }',
  '  inventory:',
  '    simulate: { latency: { p50: 5ms, p99: 40ms } }',
  '  cart:',
  '    simulate: {}',
)

const simulated = (over: Partial<SimulateConfig>, seed: number) => ({
  kind: 'simulate' as const,
  simulate: {
    latency: {p50Ms: 10, p99Ms: 50},
    errorRate: 0,
    errorStatus: 500,
    calls: [],
    callMode: 'sequential' as const,
    responseBytes: 256,
    concurrency: 0,
    seed,
    ...over,
  },
})

const defaultHealth = {intervalMs: 1000, timeoutMs: 1000, healthyThreshold: 1, unhealthyThreshold: 3}

describe('parseConfig: the DESIGN.md sketch', () => {
  it('parses to the normalised MeshConfig, every default applied', () => {
    const {config, issues} = parseConfig(SKETCH, FILE)
    // The sketch's own numbers draw one resilience-lint warning (300ms × 4 tries > 1s); nothing blocks.
    expect(issues.filter((i) => i.severity === 'error')).toEqual([])
    expect(issues.map((i) => i.path)).toEqual(['services.catalog.policy.retries'])
    expect(config).toStrictEqual({
      name: 'shop',
      file: FILE,
      dir: DIR,
      ingress: {port: 8000, routes: [{prefix: '/', service: 'frontend'}]},
      services: [
        {
          name: 'frontend',
          dependsOn: ['catalog', 'cart'],
          health: {path: '/healthz', ...defaultHealth},
          policy: {loadBalancer: {kind: 'round-robin'}, routes: []},
          versions: [{name: 'v1', replicas: 1, workload: {kind: 'command', command: 'node server.js', cwd: DIR}, env: {}}],
          stopGracePeriodMs: 10_000,
        },
        {
          name: 'catalog',
          // The simulated calls to inventory make it a dependency.
          dependsOn: ['inventory'],
          health: {path: '/healthz', ...defaultHealth},
          policy: {
            loadBalancer: {kind: 'least-request'},
            timeoutMs: 1000,
            retries: {
              attempts: 3,
              perTryTimeoutMs: 300,
              on: ['5xx', 'reset', 'connect-failure'],
              backoff: {baseMs: 25, maxMs: 250},
              budget: {ratio: 0.2, minPerSecond: 10},
            },
            outlierDetection: {consecutive5xxErrors: 5, consecutiveGatewayErrors: 0, intervalMs: 5000, baseEjectionTimeMs: 30_000, maxEjectionPercent: 50},
            circuitBreaker: {maxConnections: 100, maxPendingRequests: 50, maxRequests: 1024, maxRetries: 1024},
            rateLimit: {algorithm: 'token-bucket', requests: 200, periodMs: 1000, burst: 50, perSource: false},
            routes: [],
          },
          versions: [
            {
              name: 'v1',
              replicas: 3,
              workload: simulated(
                {latency: {p50Ms: 20, p99Ms: 120}, errorRate: 0.001, calls: [{service: 'inventory', probability: 0.5, path: '/', method: 'GET'}]},
                seedFrom('shop', 'catalog', 'v1'),
              ),
              env: {},
            },
            {name: 'v2', replicas: 3, workload: simulated({latency: {p50Ms: 15, p99Ms: 90}}, seedFrom('shop', 'catalog', 'v2')), env: {}},
          ],
          stopGracePeriodMs: 10_000,
        },
        {
          name: 'inventory',
          dependsOn: [],
          health: {path: '/healthz', ...defaultHealth},
          policy: {loadBalancer: {kind: 'round-robin'}, routes: []},
          versions: [{name: 'v1', replicas: 1, workload: simulated({latency: {p50Ms: 5, p99Ms: 40}}, seedFrom('shop', 'inventory', 'v1')), env: {}}],
          stopGracePeriodMs: 10_000,
        },
        {
          name: 'cart',
          dependsOn: [],
          health: {path: '/healthz', ...defaultHealth},
          policy: {loadBalancer: {kind: 'round-robin'}, routes: []},
          versions: [{name: 'v1', replicas: 1, workload: simulated({}, seedFrom('shop', 'cart', 'v1')), env: {}}],
          stopGracePeriodMs: 10_000,
        },
      ],
      faults: {allowHeaders: false, inject: []},
    })
  })
})

describe('parseConfig: positioned errors', () => {
  it('points at the bad value: replicas: three', () => {
    const source = yaml(
      'name: shop',
      'services:',
      '  catalog:',
      '    replicas: three', // line 4; the value starts at column 15
      '    simulate: {}',
    )
    expect(problems(source)).toEqual(['mesh.yaml:4:15 services.catalog.replicas: expected a positive integer, got "three"'])
    expect(parseConfig(source, FILE).config).toBeUndefined()
  })

  it('reads telemetry: access logs off unless accessLog is true; a non-boolean is an error at its value', () => {
    const base = ['name: shop', 'services:', '  catalog:', '    simulate: {}']
    expect(parsed(yaml(...base)).telemetry?.accessLog).toBeUndefined()
    expect(parsed(yaml(...base, 'telemetry: {accessLog: true, otlp: {endpoint: http://127.0.0.1:4318/}}')).telemetry).toEqual({
      accessLog: true,
      otlpEndpoint: 'http://127.0.0.1:4318',
    })
    expect(problems(yaml(...base, 'telemetry:', '  accessLog: sometimes'))[0]).toMatch(/^mesh\.yaml:6:14 telemetry\.accessLog: expected /)
  })

  it('reads telemetry.sampling.spansPerSecond; zero is an error at its value', () => {
    const base = ['name: shop', 'services:', '  catalog:', '    simulate: {}']
    expect(parsed(yaml(...base, 'telemetry: {sampling: {spansPerSecond: 50}}')).telemetry).toEqual({spansPerSecond: 50})
    expect(problems(yaml(...base, 'telemetry:', '  sampling: {spansPerSecond: 0}'))[0]).toMatch(
      /^mesh\.yaml:6:30 telemetry\.sampling\.spansPerSecond: expected a whole number of spans a second, at least 1/,
    )
  })

  it('points at the key of an unknown key, with a did-you-mean', () => {
    const source = yaml('name: shop', 'services:', '  catalog:', '    replica: 3', '    simulate: {}')
    expect(problems(source)).toEqual(['mesh.yaml:4:5 services.catalog.replica: unknown key "replica"; did you mean "replicas"?'])
  })

  it('lists the known keys when no key is close', () => {
    const source = yaml('name: shop', 'services:', '  catalog:', '    build: .', '    simulate: {}')
    expect(problems(source)).toEqual([
      'mesh.yaml:4:5 services.catalog.build: unknown key "build"; expected one of command, cwd, env, envFile, simulate, address, port, image, replicas, scaling, versions, dependsOn, health, stopGracePeriod, restart, watch, warmUp, profiles, protocol, policy, deploy',
    ])
  })

  it('points at the parent mapping for a missing required key', () => {
    const source = yaml('services:', '  catalog:', '    replicas: 2')
    expect(problems(source)).toEqual([
      'mesh.yaml:1:1 missing required key "name"',
      // The service mapping starts at its first key, line 3 column 5.
      'mesh.yaml:3:5 services.catalog: expected one of command, simulate or address',
    ])
  })

  it('reports every error at once, in file order', () => {
    const source = yaml(
      'name: Shop',
      'servces: {}',
      'services:',
      '  catalog:',
      '    replicas: 0',
      '    simulate: {latency: fast, errorRate: 2}',
      '  Cart:',
      '    command: 42',
      '  orders:',
      '    command: node orders.js',
      '    dependsOn: [catalogue]',
    )
    expect(problems(source)).toEqual([
      'mesh.yaml:1:7 name: expected a name of lowercase letters, digits and dashes, got "Shop"',
      'mesh.yaml:2:1 servces: unknown key "servces"; did you mean "services"?',
      'mesh.yaml:5:15 services.catalog.replicas: expected a positive integer, got 0',
      'mesh.yaml:6:25 services.catalog.simulate.latency: expected a duration like 300ms, 1s or 2m, got "fast"',
      'mesh.yaml:6:42 services.catalog.simulate.errorRate: expected a number between 0 and 1 or a percent like 1%, got 2',
      'mesh.yaml:7:3 services.Cart: expected a service name of lowercase letters, digits and dashes, starting with a letter, got "Cart"',
      'mesh.yaml:8:14 services.Cart.command: expected a non-empty string, got 42',
      // Cross-checks still run over the services that passed.
      'mesh.yaml:11:17 services.orders.dependsOn[0]: unknown service "catalogue"; did you mean "catalog"?',
    ])
  })

  it('turns a YAML syntax error into an issue with its position, and checks nothing further', () => {
    const source = yaml('name: shop', 'services:', '  catalog: {replicas: 2', '  cart: {}')
    expect(problems(source)).toEqual(['mesh.yaml:4:3 flow map in block collection must be sufficiently indented and end with a }'])
  })

  it('reports tabs and duplicate keys as the YAML parser sees them', () => {
    expect(problems(yaml('name: shop', 'services:', '  a:', '\tcommand: x'))).toEqual(['mesh.yaml:4:1 tabs are not allowed as indentation'])
    expect(problems(yaml('name: shop', 'services:', '  a: {command: x, command: y}'))).toEqual(['mesh.yaml:3:19 map keys must be unique'])
  })

  it('says what to do with an empty file', () => {
    expect(problems('')).toEqual(['mesh.yaml:1:1 expected a mapping with name and services (run `mesh init` for a starter mesh.yaml), got nothing'])
  })

  it('wants services to be a non-empty mapping', () => {
    expect(problems(yaml('name: shop', 'services: {}'))).toEqual(['mesh.yaml:2:11 services: expected a non-empty mapping of services, got a mapping'])
    expect(problems(yaml('name: shop', 'services: [a, b]'))).toEqual(['mesh.yaml:2:11 services: expected a non-empty mapping of services, got a list'])
  })
})

describe('formatIssue', () => {
  const issue = {file: '/work/demo/sub/mesh.yaml', line: 14, column: 7, path: 'services.catalog.replicas', message: 'expected a positive integer, got "three"', severity: 'error' as const}

  it('shows the file relative to the working directory', () => {
    expect(formatIssue(issue, '/work/demo')).toBe('sub/mesh.yaml:14:7 services.catalog.replicas: expected a positive integer, got "three"')
    expect(formatIssue(issue, '/work/demo/sub')).toBe('mesh.yaml:14:7 services.catalog.replicas: expected a positive integer, got "three"')
  })

  it('marks warnings and leaves out an empty path', () => {
    expect(formatIssue({...issue, severity: 'warning', message: 'hm'}, '/work/demo/sub')).toBe('mesh.yaml:14:7 services.catalog.replicas: warning: hm')
    expect(formatIssue({...issue, path: ''}, '/work/demo/sub')).toBe('mesh.yaml:14:7 expected a positive integer, got "three"')
  })
})

describe('loadConfig', () => {
  const dirs: string[] = []
  const tempMesh = async (source: string) => {
    const dir = await mkdtemp(join(tmpdir(), 'meshsim-config-'))
    dirs.push(dir)
    const file = join(dir, 'mesh.yaml')
    await writeFile(file, source)
    return {dir, file}
  }
  afterAll(async () => {
    for (const dir of dirs) await rm(dir, {recursive: true, force: true})
  })

  it('reads a file; relative cwds resolve against its directory', async () => {
    const {dir, file} = await tempMesh(yaml('name: shop', 'services:', '  web:', '    command: npm start', '    cwd: ./web'))
    const config = await loadConfig(file)
    expect(config.file).toBe(file)
    expect(config.dir).toBe(dir)
    expect(config.services[0].versions[0].workload).toEqual({kind: 'command', command: 'npm start', cwd: join(dir, 'web')})
  })

  it('reads envFile (one or a list, relative to mesh.yaml) under env: file, then env, then the version\'s own', async () => {
    const {dir, file} = await tempMesh(
      yaml(
        'name: shop',
        'services:',
        '  web:',
        '    command: npm start',
        '    envFile: [base.env, web.env]',
        '    env: {B: from-env}',
        '    versions:',
        '      v1: {}',
        '      v2: {envFile: v2.env, env: {D: v2-env}}',
      ),
    )
    await writeFile(join(dir, 'base.env'), 'A=base\nB=base\nC=base\nD=base\n')
    await writeFile(join(dir, 'web.env'), 'C=web\n')
    await writeFile(join(dir, 'v2.env'), 'B=v2-file\nD=v2-file\n')
    const [v1, v2] = (await loadConfig(file)).services[0].versions
    expect(v1.env).toEqual({A: 'base', B: 'from-env', C: 'web', D: 'base'})
    expect(v2.env).toEqual({A: 'base', B: 'v2-file', C: 'web', D: 'v2-env'})
  })

  it('an envFile that is missing is an error at its entry; a bad line, an error at that line of the file', async () => {
    const {dir, file} = await tempMesh(yaml('name: shop', 'services:', '  web:', '    command: npm start', '    envFile: [ok.env, gone.env]'))
    await writeFile(join(dir, 'ok.env'), 'A=1\nnot a variable\n')
    const error = (await loadConfig(file).catch((e: unknown) => e)) as ConfigError
    expect(error).toBeInstanceOf(ConfigError)
    expect(error.message.split('\n')).toEqual([
      `${relative(process.cwd(), join(dir, 'ok.env'))}:2:1 services.web.envFile[0]: expected NAME=VALUE with NAME of letters, digits and _, got "not a variable" (no =)`,
      `${relative(process.cwd(), file)}:5:23 services.web.envFile[1]: cannot read gone.env: there is no such file (paths are relative to mesh.yaml)`,
    ])
    expect(error.hints[0]).toBe('Fix these in ok.env and mesh.yaml.')
  })

  it('throws MESH_CONFIG_NOT_FOUND with a hint to run mesh init', async () => {
    const error = await loadConfig(join(tmpdir(), 'meshsim-nowhere', 'mesh.yaml')).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(MeshError)
    expect((error as MeshError).code).toBe('MESH_CONFIG_NOT_FOUND')
    expect((error as MeshError).hints.join(' ')).toContain('mesh init')
  })

  it('throws a ConfigError whose message has every error, one per line', async () => {
    const {file} = await tempMesh(yaml('name: shop', 'services:', '  catalog:', '    replicas: three', '    simulate: {errorRate: 5}'))
    const error = await loadConfig(file).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(ConfigError)
    expect((error as ConfigError).code).toBe('MESH_CONFIG_INVALID')
    expect((error as ConfigError).issues).toHaveLength(2)
    expect((error as ConfigError).message.split('\n')).toEqual([
      expect.stringMatching(/mesh\.yaml:4:15 services\.catalog\.replicas: expected a positive integer, got "three"$/),
      expect.stringMatching(/mesh\.yaml:5:27 services\.catalog\.simulate\.errorRate: expected a number between 0 and 1 or a percent like 1%, got 5$/),
    ])
  })

  it('returns warnings beside the config, without blocking', async () => {
    const {file} = await tempMesh(
      yaml('name: shop', 'ingress: {port: 0, routes: [{prefix: /, service: web}]}', 'services:', '  web: {simulate: {}}', '  lonely: {simulate: {}}'),
    )
    const {config, warnings} = await loadConfigWithWarnings(file)
    expect(config.services.map((s) => s.name)).toEqual(['web', 'lonely'])
    expect(warnings.map((w) => `${w.line}:${w.column} ${w.message}`)).toEqual([
      '5:3 service "lonely" is not reached: no ingress route leads to it and no service depends on it',
    ])
  })
})
