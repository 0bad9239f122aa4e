import {describe, expect, it} from 'vitest'
import {seedFrom} from '../../src/sim/time/random.js'
import {DIR, parsed, problems, yaml} from './helpers.js'

// One service named `s`, its body indented under it; line 3 is the first body line.
const one = (...body: string[]) => yaml('name: shop', 'services:', '  s:', ...body.map((l) => `    ${l}`))
const only = (...body: string[]) => parsed(one(...body)).services[0]

describe('versions and workloads', () => {
  it('builds one version v1 from the service keys when there is no versions:', () => {
    const s = only('command: ./run.sh', 'cwd: api', 'env: {A: 1}', 'replicas: 2')
    expect(s.versions).toEqual([{name: 'v1', replicas: 2, workload: {kind: 'command', command: './run.sh', cwd: `${DIR}/api`}, env: {A: '1'}}])
  })

  it('takes service keys as defaults and lets version keys override; env is merged, version wins', () => {
    const s = only(
      'command: node server.js',
      'env: {LOG: info, MODE: blue}',
      'replicas: 2',
      'versions:',
      '  v1: {}',
      '  v2: {env: {MODE: green}, replicas: 1, cwd: /srv/v2}',
    )
    expect(s.versions).toEqual([
      {name: 'v1', replicas: 2, workload: {kind: 'command', command: 'node server.js', cwd: DIR}, env: {LOG: 'info', MODE: 'blue'}},
      {name: 'v2', replicas: 1, workload: {kind: 'command', command: 'node server.js', cwd: '/srv/v2'}, env: {LOG: 'info', MODE: 'green'}},
    ])
  })

  it('lets a version bring its own kind of workload', () => {
    const s = only('command: node server.js', 'versions:', '  v1: {}', '  v2: {simulate: {latency: 5ms}}')
    expect(s.versions.map((v) => v.workload.kind)).toEqual(['command', 'simulate'])
    // A mix of real and simulated versions gets a TCP check unless told otherwise.
    expect(s.health.path).toBeUndefined()
  })

  it('reads an address as host and port', () => {
    expect(only('address: 127.0.0.1:5432').versions[0].workload).toEqual({kind: 'address', host: '127.0.0.1', port: 5432})
    expect(only('address: "[::1]:6379"').versions[0].workload).toEqual({kind: 'address', host: '::1', port: 6379})
    expect(problems(one('address: localhost'))).toEqual(['mesh.yaml:4:14 services.s.address: expected host:port like 127.0.0.1:5432, got "localhost"'])
    expect(problems(one('address: db:70000'))).toEqual(['mesh.yaml:4:14 services.s.address: expected host:port like 127.0.0.1:5432, got "db:70000"'])
  })

  it('wants exactly one of command, simulate or address', () => {
    expect(problems(one('command: x', 'address: "h:1"'))).toEqual(['mesh.yaml:5:5 services.s.address: expected only one of command, simulate or address, got command and address'])
    expect(problems(one('simulate: {}', 'address: "h:1"'))).toEqual(['mesh.yaml:5:5 services.s.address: expected only one of command, simulate or address, got simulate and address'])
    expect(problems(one('replicas: 1', 'versions: {v1: {}, v2: {command: x, address: "h:1"}}'))).toEqual([
      'mesh.yaml:5:20 services.s.versions.v1: expected one of command, simulate or address',
      'mesh.yaml:5:41 services.s.versions.v2.address: expected only one of command, simulate or address, got command and address',
    ])
  })

  it('reads simulate: beside command: as mesh sim\'s model: the command runs, the block models it', () => {
    const s = only('command: node server.js', 'simulate: {latency: {distribution: exponential, mean: 8ms}, concurrency: 4, calls: [{service: s}]}')
    expect(s.versions.map((v) => v.workload.kind)).toEqual(['command'])
    expect(s.model).toMatchObject({latency: {distribution: 'exponential', meanMs: 8}, concurrency: 4, seed: seedFrom('shop', 's', 'model')})
    // mesh up ignores the model: its calls are no dependencies of the command (no $S_URL, no start order).
    expect(s.dependsOn).toEqual([])
    expect(only('command: x').model).toBeUndefined()
    expect(only('simulate: {}').model).toBeUndefined()
    // A version of its own simulate: is simulated; the others run the command the model stands for.
    const mixed = only('command: x', 'simulate: {latency: 3ms}', 'versions: {v1: {}, v2: {simulate: {latency: 9ms}}}')
    expect(mixed.versions.map((v) => v.workload.kind)).toEqual(['command', 'simulate'])
    expect(mixed.model?.latency).toEqual({p50Ms: 3, p99Ms: 3})
  })

  it('refuses a model where it is ambiguous or cannot be: beside a version\'s command, beside an address, on protocol: tcp, calling a service that does not exist', () => {
    expect(problems(one('versions: {v1: {command: x, simulate: {}}}'))).toEqual([
      "mesh.yaml:4:33 services.s.versions.v1.simulate: simulate: beside command: is mesh sim's model of the service, one for all its command versions: write it at the service's level, beside the service's command:",
    ])
    expect(problems(one('command: x', 'simulate: {}', 'address: "h:1"'))).toEqual([
      'mesh.yaml:6:5 services.s.address: expected only one of command, simulate or address, got command and address',
    ])
    expect(problems(one('protocol: tcp', 'command: x', 'simulate: {}'))).toEqual([
      'mesh.yaml:6:5 services.s.simulate: mesh sim models requests, not TCP connections: a protocol: tcp service has no simulate: model',
    ])
    expect(only('protocol: grpc', 'command: x', 'simulate: {}').model).toBeDefined()
    expect(problems(one('command: x', 'simulate: {calls: [{service: paymnts}]}'))).toEqual([
      'mesh.yaml:5:34 services.s.simulate.calls[0].service: unknown service "paymnts"; known services: s',
    ])
  })

  it('checks version names and wants at least one version', () => {
    expect(problems(one('simulate: {}', 'versions: {V1: {}}'))).toEqual([
      'mesh.yaml:5:16 services.s.versions.V1: expected a version name of lowercase letters, digits, dots and dashes, got "V1"',
    ])
    expect(problems(one('simulate: {}', 'versions: {}'))).toEqual(['mesh.yaml:5:15 services.s.versions: expected a non-empty mapping, got a mapping'])
  })

  it('turns env scalars into strings as written, and rejects nested values', () => {
    expect(only('command: x', 'env: {A: 1.0, B: true, C: hello, D: 0x10}').versions[0].env).toEqual({A: '1.0', B: 'true', C: 'hello', D: '0x10'})
    expect(problems(one('command: x', 'env: {A: [1], 2B: x}'))).toEqual([
      'mesh.yaml:5:14 services.s.env.A: expected a string, number or boolean, got a list',
      'mesh.yaml:5:19 services.s.env.2B: expected an environment variable name (letters, digits and _), got "2B"',
    ])
  })

  it('applies service defaults: dependsOn, health, stop grace period', () => {
    const s = only('command: x')
    expect(s).toMatchObject({
      dependsOn: [],
      health: {intervalMs: 1000, timeoutMs: 1000, healthyThreshold: 1, unhealthyThreshold: 3},
      stopGracePeriodMs: 10_000,
    })
    expect(s.health).not.toHaveProperty('path')
    expect(only('command: x', 'health: {path: /ready, interval: 2s}', 'stopGracePeriod: 30s')).toMatchObject({
      health: {path: '/ready', intervalMs: 2000, timeoutMs: 1000},
      stopGracePeriodMs: 30_000,
    })
  })

  it('adds the services a simulated version calls to dependsOn, after the declared ones, once each', () => {
    const config = parsed(
      yaml(
        'name: shop',
        'services:',
        '  a:',
        '    dependsOn: [c]',
        '    versions:',
        '      v1: {simulate: {calls: [{service: b}, {service: c}]}}',
        '      v2: {simulate: {calls: [{service: b}, {service: d}]}}',
        '  b: {simulate: {}}',
        '  c: {simulate: {}}',
        '  d: {simulate: {}}',
      ),
    )
    expect(config.services[0].dependsOn).toEqual(['c', 'b', 'd'])
  })
})

describe('simulate:', () => {
  const sim = (...lines: string[]) => {
    const w = only(...lines).versions[0].workload
    if (w.kind !== 'simulate') throw new Error(`expected a simulated workload, got ${w.kind}`)
    return w.simulate
  }

  it('fills every default, with a seed derived from mesh, service and version', () => {
    expect(sim('simulate:')).toEqual({
      latency: {p50Ms: 10, p99Ms: 50},
      errorRate: 0,
      errorStatus: 500,
      calls: [],
      callMode: 'sequential',
      responseBytes: 256,
      concurrency: 0,
      seed: seedFrom('shop', 's', 'v1'),
    })
  })

  it('reads the short forms: one latency, a percent error rate, a size with a unit', () => {
    expect(
      sim('simulate: {latency: 20ms, errorRate: 1%, responseSize: 1kb, callMode: parallel, concurrency: 8, seed: 42, errorStatus: 503}'),
    ).toMatchObject({latency: {p50Ms: 20, p99Ms: 20}, errorRate: 0.01, responseBytes: 1024, callMode: 'parallel', concurrency: 8, seed: 42, errorStatus: 503})
  })

  it('reads simulate.coldStart as a duration or a {p50, p99} distribution, like latency', () => {
    expect(sim('simulate: {coldStart: 800ms}')).toMatchObject({coldStart: {p50Ms: 800, p99Ms: 800}})
    expect(sim('simulate: {coldStart: {p50: 600ms, p99: 2s}}')).toMatchObject({coldStart: {p50Ms: 600, p99Ms: 2000}})
    expect(sim('simulate: {}')).not.toHaveProperty('coldStart')
    expect(problems(one('simulate: {coldStart: {p50: 2s, p99: 1s}}'))).toEqual(['mesh.yaml:4:42 services.s.simulate.coldStart.p99: expected a duration >= p50 (2s), got "1s"'])
  })

  it('reads simulate.isolated (a process of its own when simulation hosts are on), absent unless true', () => {
    expect(sim('simulate: {isolated: true}')).toMatchObject({isolated: true})
    expect(sim('simulate: {isolated: false}')).not.toHaveProperty('isolated')
    expect(sim('simulate: {}')).not.toHaveProperty('isolated')
    expect(problems(one('simulate: {isolated: 1}'))).toHaveLength(1)
  })

  it('reads simulation.hosts (a number, 0 included, or auto; default auto) and says what it expected otherwise', () => {
    const top = (...lines: string[]) => yaml('name: shop', ...lines, 'services:', '  s: {simulate: {}}')
    expect(parsed(top('simulation: {hosts: 3}')).simulation).toEqual({hosts: 3})
    expect(parsed(top('simulation: {hosts: 0}')).simulation).toEqual({hosts: 0})
    expect(parsed(top('simulation: {hosts: auto}')).simulation).toEqual({hosts: 'auto'})
    expect(parsed(top('simulation: {}')).simulation).toEqual({hosts: 'auto'})
    expect(parsed(top()).simulation).toBeUndefined()
    expect(problems(top('simulation: {hosts: -1}'))).toEqual([
      'mesh.yaml:2:21 simulation.hosts: expected a whole number of simulation hosts from 0 (a process per simulated instance) to 256, or auto (one per core), got -1',
    ])
    expect(problems(top('simulation: {hosts: per-core}'))).toHaveLength(1)
    expect(problems(top('simulation: {host: 2}'))[0]).toMatch(/^mesh\.yaml:2:14 simulation\.host: unknown key "host"; did you mean "hosts"\?/)
  })

  it('fills call defaults and upper-cases the method', () => {
    const config = parsed(yaml('name: shop', 'services:', '  s: {simulate: {calls: [{service: t, probability: 0.25, method: post, path: /x}, {service: t}]}}', '  t: {simulate: {}}'))
    const w = config.services[0].versions[0].workload
    expect(w.kind === 'simulate' && w.simulate.calls).toEqual([
      {service: 't', probability: 0.25, path: '/x', method: 'POST'},
      {service: 't', probability: 1, path: '/', method: 'GET'},
    ])
  })

  it('wants p99 >= p50', () => {
    expect(problems(one('simulate: {latency: {p50: 20ms, p99: 10ms}}'))).toEqual([
      'mesh.yaml:4:42 services.s.simulate.latency.p99: expected a duration >= p50 (20ms), got "10ms"',
    ])
  })

  it('reads latency distributions, always filling p50 and p99 (derived for exponential and empirical)', () => {
    expect(sim('simulate: {latency: {distribution: exponential, mean: 20ms}}').latency).toEqual({
      p50Ms: 20 * Math.LN2,
      p99Ms: 20 * Math.log(100),
      distribution: 'exponential',
      meanMs: 20,
    })
    expect(sim('simulate: {latency: {distribution: constant, mean: 7ms}}').latency).toEqual({p50Ms: 7, p99Ms: 7, distribution: 'constant', meanMs: 7})
    // Quantiles interpolated between the sorted samples: 10 20 30 40 100 → p50 30, p99 40 + 0.96·60.
    const empirical = sim('simulate: {latency: {distribution: empirical, samples: [30ms, 10ms, 20ms, 40ms, 100ms]}}').latency
    expect(empirical).toMatchObject({p50Ms: 30, distribution: 'empirical', samplesMs: [30, 10, 20, 40, 100]})
    expect(empirical.p99Ms).toBeCloseTo(97.6, 9)
    // A log-normal named or not is today's {p50, p99}.
    expect(sim('simulate: {latency: {distribution: lognormal, p50: 5ms, p99: 30ms}}').latency).toEqual({p50Ms: 5, p99Ms: 30})
    expect(sim('simulate: {coldStart: {distribution: exponential, mean: 1s}}').coldStart).toMatchObject({distribution: 'exponential', meanMs: 1000})
  })

  it('names the distribution a latency key belongs to, and refuses a distribution that does not exist', () => {
    expect(problems(one('simulate: {latency: {mean: 20ms}}'))).toEqual([
      'mesh.yaml:4:26 services.s.simulate.latency.mean: mean is for distribution: exponential or constant; add the distribution, or write p50 and p99 for a log-normal',
    ])
    expect(problems(one('simulate: {latency: {distribution: exponential, p50: 20ms}}'))).toEqual([
      'mesh.yaml:4:53 services.s.simulate.latency.p50: distribution: exponential is given by mean, not p50',
    ])
    expect(problems(one('simulate: {latency: {distribution: exponental, mean: 20ms}}'))).toEqual([
      'mesh.yaml:4:40 services.s.simulate.latency.distribution: expected one of lognormal, exponential, constant, empirical, got "exponental"; did you mean "exponential"?',
    ])
    expect(problems(one('simulate: {latency: {distribution: empirical, samples: []}}'))).toEqual([
      'mesh.yaml:4:60 services.s.simulate.latency.samples: expected a non-empty list, got a list',
    ])
    expect(problems(one('simulate: {latency: {distribution: constant}}'))).toEqual(['mesh.yaml:4:25 services.s.simulate.latency: missing required key "mean"'])
  })

  it('reads a misnamed required key as one mistake, not an unknown key and a missing one', () => {
    expect(problems(one('simulate: {latency: {p50Ms: 5, p99Ms: 20}}'))).toEqual([
      'mesh.yaml:4:26 services.s.simulate.latency.p50Ms: unknown key "p50Ms"; did you mean "p50"?',
      'mesh.yaml:4:36 services.s.simulate.latency.p99Ms: unknown key "p99Ms"; did you mean "p99"?',
    ])
    // A key that stands for nothing missing is still reported with the keys expected, and the missing one too.
    expect(problems(one('simulate: {latency: {p50: 5ms, median: 20}}'))).toEqual([
      'mesh.yaml:4:25 services.s.simulate.latency: missing required key "p99"',
      'mesh.yaml:4:36 services.s.simulate.latency.median: unknown key "median"; expected one of distribution, p50, p99',
    ])
  })

  it('reports bad values each at its own node', () => {
    expect(problems(one('simulate:', '  errorRate: 150%', '  errorStatus: 99', '  callMode: random', '  responseSize: lots', '  calls: [{probability: 2}]'))).toEqual([
      'mesh.yaml:5:18 services.s.simulate.errorRate: expected a number between 0 and 1 or a percent like 1%, got "150%"',
      'mesh.yaml:6:20 services.s.simulate.errorStatus: expected an HTTP status between 100 and 599, got 99',
      'mesh.yaml:7:17 services.s.simulate.callMode: expected one of sequential, parallel, got "random"',
      'mesh.yaml:8:21 services.s.simulate.responseSize: expected a size in bytes like 512, 512b, 1kb or 2mb, got "lots"',
      'mesh.yaml:9:15 services.s.simulate.calls[0]: missing required key "service"',
      'mesh.yaml:9:29 services.s.simulate.calls[0].probability: expected a number between 0 and 1, got 2',
    ])
  })
})

describe('policy:', () => {
  const policy = (...lines: string[]) => only('simulate: {}', 'versions: {v1: {}, v2: {}}', 'policy:', ...lines.map((l) => `  ${l}`)).policy
  // Lines of `policy` start at line 7, indented by 6.
  const policyProblems = (...lines: string[]) => problems(one('simulate: {}', 'versions: {v1: {}, v2: {}}', 'policy:', ...lines.map((l) => `  ${l}`)))

  it('defaults to round-robin and no rules', () => {
    expect(only('simulate: {}').policy).toStrictEqual({loadBalancer: {kind: 'round-robin'}, routes: []})
  })

  it('reads a ring-hash balancer with what to hash on, and insists on it', () => {
    expect(policy('loadBalancer: {type: ring-hash, hashOn: {header: x-user}}').loadBalancer).toEqual({kind: 'ring-hash', hashOn: {header: 'x-user'}})
    expect(policy('loadBalancer: {type: ring-hash, hashOn: {cookie: session}}').loadBalancer).toEqual({kind: 'ring-hash', hashOn: {cookie: 'session'}})
    expect(policy('loadBalancer: {type: ewma}').loadBalancer).toEqual({kind: 'ewma'})
    expect(policyProblems('loadBalancer: ring-hash')).toEqual([
      'mesh.yaml:7:21 services.s.policy.loadBalancer: ring-hash needs hashOn; write {type: ring-hash, hashOn: {header: x-user}}',
    ])
    expect(policyProblems('loadBalancer: {type: random, hashOn: {header: x}}')).toEqual([
      'mesh.yaml:7:36 services.s.policy.loadBalancer.hashOn: hashOn only applies to ring-hash, not random',
    ])
    expect(policyProblems('loadBalancer: fastest')).toEqual([
      'mesh.yaml:7:21 services.s.policy.loadBalancer: expected one of round-robin, random, least-request, ewma, ring-hash, got "fastest"',
    ])
  })

  it('fills retry defaults and reads status codes in on:', () => {
    expect(policy('retries: {attempts: 2, on: [gateway-error, 503]}').retries).toStrictEqual({
      attempts: 2,
      on: ['gateway-error', 503],
      backoff: {baseMs: 25, maxMs: 250},
      budget: {ratio: 0.2, minPerSecond: 10},
    })
    expect(policy('retries: {attempts: 0}').retries?.on).toEqual(['5xx', 'reset', 'connect-failure'])
    expect(policyProblems('retries: {attempts: -1, on: [5xx, 600, sometimes]}')).toEqual([
      'mesh.yaml:7:27 services.s.policy.retries.attempts: expected a non-negative integer, got -1',
      'mesh.yaml:7:41 services.s.policy.retries.on[1]: expected one of 5xx, gateway-error, reset, connect-failure, retriable-status-codes, cancelled, deadline-exceeded, internal, resource-exhausted, unavailable or an HTTP status, got 600',
      'mesh.yaml:7:46 services.s.policy.retries.on[2]: expected one of 5xx, gateway-error, reset, connect-failure, retriable-status-codes, cancelled, deadline-exceeded, internal, resource-exhausted, unavailable or an HTTP status, got "sometimes"',
    ])
  })

  it('fills outlier detection and circuit breaker defaults', () => {
    const p = policy('outlierDetection: {}', 'circuitBreaker: {maxRequests: 10}')
    expect(p.outlierDetection).toEqual({consecutive5xxErrors: 5, consecutiveGatewayErrors: 0, intervalMs: 10_000, baseEjectionTimeMs: 30_000, maxEjectionPercent: 10})
    expect(p.circuitBreaker).toEqual({maxConnections: 1024, maxPendingRequests: 1024, maxRequests: 10, maxRetries: 1024})
  })

  it('reads rate limits: any period, burst defaulting to one period of requests', () => {
    expect(policy('rateLimit: {rate: 200/s}').rateLimit).toEqual({algorithm: 'token-bucket', requests: 200, periodMs: 1000, burst: 200, perSource: false})
    expect(policy('rateLimit: {algorithm: sliding-log, rate: 20/100ms, burst: 5, perSource: true}').rateLimit).toEqual({
      algorithm: 'sliding-log',
      requests: 20,
      periodMs: 100,
      burst: 5,
      perSource: true,
    })
    expect(policy('rateLimit: {rate: 30/min}').rateLimit).toMatchObject({requests: 30, periodMs: 60_000})
    expect(policyProblems('rateLimit: {rate: 200}')).toEqual([
      'mesh.yaml:7:25 services.s.policy.rateLimit.rate: expected a rate like 200/s, 10/m, 5/h or 20/100ms, got 200',
    ])
  })

  it('reads routes, and wants each match to say something', () => {
    expect(policy('routes: [{match: {headers: {x-canary: "true"}, pathPrefix: /beta}, version: v2}]').routes).toEqual([
      {match: {headers: {'x-canary': 'true'}, pathPrefix: '/beta'}, version: 'v2'},
    ])
    expect(policyProblems('routes: [{match: {}, version: v2}, {match: {pathPrefix: beta}, version: v1}]')).toEqual([
      'mesh.yaml:7:24 services.s.policy.routes[0].match: expected at least one of headers or pathPrefix',
      'mesh.yaml:7:63 services.s.policy.routes[1].match.pathPrefix: expected a path starting with /, got "beta"',
    ])
  })

  it('reads timeout and mirror, with mirror percent defaulting to 100', () => {
    const p = policy('timeout: 2.5s', 'mirror: {version: v2}')
    expect(p.timeoutMs).toBe(2500)
    expect(p.mirror).toEqual({version: 'v2', percent: 100})
    expect(policyProblems('timeout: soon', 'mirror: {version: v2, percent: 120}')).toEqual([
      'mesh.yaml:7:16 services.s.policy.timeout: expected a positive duration like 300ms, 1s or 2m, got "soon"',
      'mesh.yaml:8:38 services.s.policy.mirror.percent: expected a number between 0 and 100, got 120',
    ])
  })
})

describe('top level', () => {
  it('reads ingress and faults', () => {
    const config = parsed(yaml('name: shop', 'ingress: {port: 8080, routes: [{prefix: /api, service: s}]}', 'faults: {allowHeaders: true}', 'services:', '  s: {simulate: {}}'))
    expect(config.ingress).toEqual({port: 8080, routes: [{prefix: '/api', service: 's'}]})
    expect(config.faults).toEqual({allowHeaders: true, inject: []})
  })

  it('checks ingress values', () => {
    expect(problems(yaml('name: shop', 'ingress: {port: 70000, routes: [{prefix: api, service: s}]}', 'services:', '  s: {simulate: {}}'))).toEqual([
      'mesh.yaml:2:17 ingress.port: expected an integer between 0 and 65535, got 70000',
      'mesh.yaml:2:42 ingress.routes[0].prefix: expected a path starting with /, got "api"',
    ])
  })

  it('keeps services, versions and ingress routes in file order', () => {
    const config = parsed(
      yaml('name: shop', 'ingress: {port: 0, routes: [{prefix: /z, service: zeta}, {prefix: /, service: alpha}]}', 'services:', '  zeta: {simulate: {}, versions: {v9: {}, v10: {}, "2": {}}}', '  alpha: {simulate: {}}'),
    )
    expect(config.services.map((s) => s.name)).toEqual(['zeta', 'alpha'])
    expect(config.services[0].versions.map((v) => v.name)).toEqual(['v9', 'v10', '2'])
    expect(config.ingress?.routes.map((r) => r.service)).toEqual(['zeta', 'alpha'])
  })
})

describe('YAML features', () => {
  it('follows anchors and aliases', () => {
    const config = parsed(yaml('name: shop', 'services:', '  a: &fast {simulate: {latency: 1ms}}', '  b: *fast'))
    expect(config.services.map((s) => s.versions[0].workload.kind)).toEqual(['simulate', 'simulate'])
  })

  it('treats an empty value as an empty mapping where a mapping is expected', () => {
    expect(problems(yaml('name: shop', 'services:', '  a:'))).toEqual(['mesh.yaml:3:5 services.a: expected one of command, simulate or address'])
  })
})

describe('protocol: tcp', () => {
  it('is a command or address service with connection-level policy only; the rest is an error where it is written', () => {
    expect(only('protocol: tcp', 'command: postgres', 'replicas: 2', 'policy: {loadBalancer: least-request, circuitBreaker: {maxConnections: 10}}').protocol).toBe('tcp')
    expect(only('command: npm start').protocol).toBeUndefined()
    expect(problems(one('protocol: tcp', 'simulate: {}', 'health: {path: /healthz}', 'policy: {retries: {attempts: 2}, timeout: 1s}'))).toEqual([
      'mesh.yaml:5:5 services.s.simulate: a simulated service speaks HTTP; protocol: tcp needs command: or address:',
      'mesh.yaml:6:14 services.s.health.path: protocol: tcp is checked by TCP connect; an HTTP health path does not apply',
      'mesh.yaml:7:14 services.s.policy.retries: policy.retries acts on HTTP requests; a protocol: tcp service takes only loadBalancer, weights, circuitBreaker, outlierDetection, authorization, mtls',
      'mesh.yaml:7:38 services.s.policy.timeout: policy.timeout acts on HTTP requests; a protocol: tcp service takes only loadBalancer, weights, circuitBreaker, outlierDetection, authorization, mtls',
    ])
    expect(problems(one('protocol: tcp', 'command: x', 'policy: {loadBalancer: ewma}'))).toEqual([
      'mesh.yaml:6:28 services.s.policy.loadBalancer: ewma weighs response latency; a protocol: tcp service balances by round-robin, random or least-request (least connections)',
    ])
    expect(problems(one('protocol: udp', 'command: x'))).toEqual(['mesh.yaml:4:15 services.s.protocol: expected one of http, grpc, tcp, got "udp"'])
    // Connections are sessions: neither the autoscaler (it counts requests) nor the activator (it holds requests) sees them.
    const noScaling = 'protocol: tcp connections are sessions, not requests: the autoscaler and the activator count and hold requests only, so a connection would bypass them; give a protocol: tcp service replicas:'
    expect(problems(one('protocol: tcp', 'command: x', 'scaling: {minScale: 0}'))).toEqual([`mesh.yaml:6:5 services.s.scaling: ${noScaling}`])
    expect(problems(one('protocol: tcp', 'versions:', '  v1: {command: x, scaling: {maxScale: 2}}'))).toEqual([`mesh.yaml:6:24 services.s.versions.v1.scaling: ${noScaling}`])
  })

  it('cannot be reached by the ingress or called by a simulated service: both speak HTTP', () => {
    const source = yaml(
      'name: shop',
      'ingress: {port: 0, routes: [{prefix: /, service: db}]}',
      'services:',
      '  db: {protocol: tcp, command: postgres}',
      '  api: {simulate: {calls: [{service: db}]}}',
    )
    expect(problems(source)).toEqual([
      'mesh.yaml:2:50 ingress.routes[0].service: "db" is protocol: tcp; the ingress routes HTTP requests only',
      'mesh.yaml:5:38 services.api.simulate.calls[0].service: a simulated service calls over HTTP, but "db" is protocol: tcp',
    ])
  })
})

describe('protocol: grpc', () => {
  it('is a command or address service with every HTTP policy; the simulator and an HTTP/1.1 health path cannot reach it', () => {
    const grpc = only('protocol: grpc', 'command: ./server', 'replicas: 3', 'policy: {retries: {attempts: 2, on: [unavailable, deadline-exceeded]}, timeout: 1s}')
    expect(grpc.protocol).toBe('grpc')
    expect(grpc.policy.retries?.on).toEqual(['unavailable', 'deadline-exceeded'])
    expect(problems(one('protocol: grpc', 'simulate: {}', 'health: {path: /healthz}'))).toEqual([
      'mesh.yaml:5:5 services.s.simulate: a simulated service speaks HTTP/1.1; protocol: grpc needs command: or address:',
      'mesh.yaml:6:14 services.s.health.path: an HTTP/1.1 health path cannot reach a protocol: grpc service; use health.grpc: true (grpc.health.v1), or leave it to a TCP connect',
    ])
  })

  it('health.command is a shell command, as a compose healthcheck; a service takes one kind of check', () => {
    expect(only('command: x', 'health: {command: pg_isready -p $$PORT}').health.command).toBe('pg_isready -p $PORT')
    expect(problems(one('command: x', 'health: {path: /healthz, command: "true"}'))).toEqual([
      'mesh.yaml:5:30 services.s.health.command: health takes one check: path or command, not both',
    ])
  })

  it('health.grpc asks grpc.health.v1 for the whole server (true) or one service by name; only a protocol: grpc service has one', () => {
    expect(only('protocol: grpc', 'command: x', 'health: {grpc: true}').health.grpcService).toBe('')
    expect(only('protocol: grpc', 'command: x', 'health: {grpc: shop.Ratings}').health.grpcService).toBe('shop.Ratings')
    expect(only('protocol: grpc', 'command: x', 'health: {grpc: false}').health.grpcService).toBeUndefined()
    expect(only('protocol: grpc', 'command: x').health.grpcService).toBeUndefined()
    expect(problems(one('command: x', 'health: {grpc: true}'))).toEqual([
      'mesh.yaml:5:14 services.s.health.grpc: a gRPC health check needs protocol: grpc; this service speaks http (use health.path)',
    ])
    expect(problems(one('protocol: grpc', 'command: x', 'health: {grpc: 3}'))).toEqual([
      'mesh.yaml:6:20 services.s.health.grpc: expected true, false or a gRPC service name, got 3',
    ])
  })
})

describe('a value from a fixed list', () => {
  it('names the one a near miss probably meant', () => {
    expect(problems(one('protocol: tpc', 'command: x'))).toEqual(['mesh.yaml:4:15 services.s.protocol: expected one of http, grpc, tcp, got "tpc"; did you mean "tcp"?'])
    expect(problems(one('protocol: udp', 'command: x'))).toEqual(['mesh.yaml:4:15 services.s.protocol: expected one of http, grpc, tcp, got "udp"'])
  })
})
