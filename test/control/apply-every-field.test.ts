// `mesh apply` never ignores a change in silence: for every field of a mesh.yaml that
// sets every key the schema has, a change to that field alone is either applied or
// reported as needing `mesh down && mesh up`, by `apply` and by `apply --dry-run` alike.
// (The fields are walked in the parsed config, so a field the schema gains is walked
// too once this file's mesh.yaml sets it; restartOnlyChanges reports any field no live
// change covers.)
import {execFileSync} from 'node:child_process'
import {mkdirSync, mkdtempSync, rmSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {afterAll, describe, expect, test} from 'vitest'
import {parseConfig} from '../../src/sim/config/load-config.js'
import type {MeshConfig, ServiceConfig} from '../../src/sim/config/types.js'
import {versionWeights} from '../../src/sim/config/versions.js'
import {type ApplyHost, ConfigApply} from '../../src/sim/control/config-apply.js'
import {ConcurrencyAccount, ConcurrencyGate} from '../../src/sim/scaling/concurrency-gate.js'
import type {ApplyResult} from '../../src/sim/control/policy-diff.js'
import {Telemetry} from '../../src/sim/telemetry/telemetry.js'
import {VirtualClock} from '../../src/sim/time/clock.js'

const DIR = mkdtempSync(path.join(os.tmpdir(), 'meshsim-apply-'))
mkdirSync(path.join(DIR, 'src'))
// policy.tls's files are read at load: a self-signed certificate and its key.
execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', path.join(DIR, 'tls.key'), '-out', path.join(DIR, 'tls.crt'), '-subj', '/CN=x.example', '-days', '1'], {stdio: 'ignore'})
afterAll(() => rmSync(DIR, {recursive: true, force: true}))

const EVERY_KEY = `
name: every
ingress:
  port: 8000
  routes: [{prefix: /api, service: api, rewrite: /}]
  requestAuthentication: {jwtRules: [{issuer: mesh, audiences: [shop]}]}
faults:
  allowHeaders: true
  inject:
    - {service: db, delay: 100ms, percent: 50}
security: {trustDomain: example.org, certTTL: 1h, mtls: PERMISSIVE}
telemetry:
  accessLog: true
  sampling: {spansPerSecond: 100}
  otlp: {endpoint: http://127.0.0.1:4318}
functions: {accountConcurrency: 10}
services:
  api:
    dependsOn:
      db: {condition: service_started}
      cache: {condition: service_healthy, required: false}
    health: {path: /healthz, interval: 1s, timeout: 1s, healthyThreshold: 1, unhealthyThreshold: 3}
    stopGracePeriod: 5s
    restart: on-failure:3
    watch: [src]
    profiles: [web]
    env: {A: '1'}
    policy:
      loadBalancer: {type: ring-hash, hashOn: {header: x-user}}
      timeout: 1s
      retries: {attempts: 2, perTryTimeout: 100ms, on: [5xx, 503], backoff: {base: 10ms, max: 100ms}, budget: {ratio: 0.2, minPerSecond: 10}}
      outlierDetection: {consecutive5xxErrors: 5, consecutiveGatewayErrors: 2, interval: 10s, baseEjectionTime: 30s, maxEjectionPercent: 10}
      circuitBreaker: {maxConnections: 10, maxPendingRequests: 10, maxRequests: 10, maxRetries: 3}
      rateLimit: {algorithm: sliding-window, rate: 100/s, burst: 10, perSource: true}
      routes: [{match: {headers: {x-v: '2'}, pathPrefix: /b}, version: v2}]
      weights: {v1: 90, v2: 10}
      mirror: {version: v2, percent: 5}
      authorization: {allow: [{from: [ingress], methods: [GET], paths: [/x]}], deny: [{from: [db]}]}
      requestAuthentication:
        jwtRules:
          - {issuer: mesh, audiences: [api], fromHeaders: [{name: x-jwt, prefix: 'Token '}], fromParams: [t], forwardOriginalToken: true, outputPayloadToHeader: x-p, outputClaimToHeaders: [{header: x-c, claim: c}]}
          - {issuer: 'https://idp', jwks: '{"keys":[{"kty":"EC","crv":"P-256","x":"F9gip3S84NJupHkpAViYpS3j9eNU6r40nRcNAUhNuRU","y":"IAhuMAPCI3m7o7sw3Gy_3er7IStYifzywRB7gLAMq7w"}]}'}
          - {issuer: other, jwksUri: 'http://db/jwks'}
      mtls: STRICT
      tls: {mode: MUTUAL, sni: x.example, caCertificates: tls.crt, clientCertificate: tls.crt, privateKey: tls.key, subjectAltNames: [x.example]}
    versions:
      v1: {command: node a.js, cwd: src, replicas: 2}
      v2: {command: node b.js, port: 9001}
  rpc:
    protocol: grpc
    command: node rpc.js
    health: {grpc: shop.Rpc}
  db:
    simulate: {latency: {p50: 1ms, p99: 5ms}, errorRate: 0.1, errorStatus: 503, calls: [{service: rpc, probability: 0.5, path: /c, method: POST}], callMode: parallel, responseSize: 100, concurrency: 4, seed: 7}
    scaling: {minScale: 1, maxScale: 4, containerConcurrency: 1, target: 1, reservedConcurrency: 4}
  cache:
    protocol: tcp
    address: 127.0.0.1:6379
    health: {command: 'true'}
`

function load(source: string): MeshConfig {
  const {config, issues} = parseConfig(source, path.join(DIR, 'mesh.yaml'), {})
  expect(issues.filter((i) => i.severity === 'error')).toEqual([])
  return config!
}

/** The daemon's side of apply, recording nothing but what apply asks; `account`: the data plane's, read from `config` as the daemon's is. */
function fakeHost(config: MeshConfig, account?: ConcurrencyAccount): ApplyHost {
  const destination = (s: ServiceConfig) => ({apply() {}, endpoints: {setWeights() {}, currentWeights: () => versionWeights(s)}})
  const destinations = new Map(config.services.map((s) => [s.name, destination(s)]))
  const host = {
    config,
    dataPlane: {
      allowFaultHeaders: config.faults.allowHeaders,
      destination: (name: string) => destinations.get(name),
      addDestination: (s: ServiceConfig) => destinations.set(s.name, destination(s)),
      removeDestination: (name: string) => destinations.delete(name),
      accountLimitChanged: () => account?.limitsChanged(),
    },
    registry: {addService() {}, removeService() {}},
    deploys: {history: () => [], inProgress: () => undefined, start: () => ({id: 'd1'})},
    faults: {clear() {}},
    telemetry: new Telemetry({
      clock: new VirtualClock(),
      accessLogDir: config.telemetry?.accessLog ? path.join(DIR, 'access') : undefined,
      otlpEndpoint: config.telemetry?.otlpEndpoint,
      spansPerSecond: config.telemetry?.spansPerSecond,
    }),
    accessLogDir: path.join(DIR, 'access'),
    instances: {
      instancesOf: (service: string, version = 'v1') => [`${service}-${version}-0`],
      addInstances: async (s: ServiceConfig, v: {name: string}, n: number) => Array.from({length: n}, (_, i) => `${s.name}-${v.name}-${i + 1}`),
      removeInstance: async () => {},
      isStarted: () => true,
      markNotStarted() {},
      forgetService() {},
    },
    profileEnabled: () => true,
    onApplied() {},
  }
  return host as unknown as ApplyHost
}

type Json = null | boolean | number | string | Json[] | {[key: string]: Json}

/** A changed value of the same kind: what an edit to that one field of mesh.yaml makes. */
function edits(value: Json): Json[] {
  if (typeof value === 'number') return [value + 1]
  if (typeof value === 'string') return [`${value}x`]
  if (typeof value === 'boolean') return [!value]
  if (Array.isArray(value)) {
    if (value.length === 0) return []
    const last = value[value.length - 1]
    // Services and versions are keyed by name in mesh.yaml: one more is one more name.
    const more = last && typeof last === 'object' && !Array.isArray(last) && typeof last.name === 'string' ? {...last, name: `${last.name}x`} : last
    // Shorter only where it stays a valid list (several lists need one entry at least).
    return value.length > 1 ? [[...value, more], value.slice(0, -1)] : [[...value, more]]
  }
  if (value && typeof value === 'object') {
    const keys = Object.keys(value)
    return keys.length ? [{...value, zz: value[keys[0]]}] : []
  }
  return []
}

/** Every path to a value in the config (objects, arrays and leaves), with the config as edited there. */
function* everyEdit(config: MeshConfig): Generator<{at: string; edited: MeshConfig}> {
  function* walk(value: Json, at: Array<string | number>): Generator<{at: Array<string | number>; value: Json}> {
    if (at.length > 0) for (const v of edits(value)) yield {at, value: v}
    if (value && typeof value === 'object') {
      for (const [k, v] of Object.entries(value)) yield* walk(v, [...at, Array.isArray(value) ? Number(k) : k])
    }
  }
  const plain = structuredClone(config) as unknown as Json
  for (const {at, value} of walk(plain, [])) {
    // file and dir say where mesh.yaml is, not what it says.
    if (at[0] === 'file' || at[0] === 'dir') continue
    const edited = structuredClone(config) as unknown as Record<string | number, Json>
    let parent: Record<string | number, Json> = edited
    for (const k of at.slice(0, -1)) parent = parent[k] as Record<string | number, Json>
    parent[at[at.length - 1]] = value
    yield {at: at.join('.'), edited: edited as unknown as MeshConfig}
  }
}

const RESTART = 'mesh down && mesh up'

function expectReported(at: string, result: ApplyResult): void {
  const said = [...result.changes, ...result.notApplied]
  expect(said.length, `an edit of ${at} was neither applied nor reported`).toBeGreaterThan(0)
  for (const line of result.notApplied) expect(line, `${at}: not applied, yet not said what to do`).toContain(RESTART)
}

describe('mesh apply reports every field', () => {
  const base = load(EVERY_KEY)

  test('the mesh.yaml sets every optional key (so every field is walked)', () => {
    const api = base.services.find((s) => s.name === 'api')!
    expect(Object.keys(api.policy).sort()).toEqual(['authorization', 'circuitBreaker', 'loadBalancer', 'mirror', 'mtls', 'outlierDetection', 'rateLimit', 'requestAuthentication', 'retries', 'routes', 'timeoutMs', 'tls', 'weights'])
    expect(Object.keys(base.telemetry!).sort()).toEqual(['accessLog', 'otlpEndpoint', 'spansPerSecond'])
    expect(base.faults.inject.length).toBe(1)
    expect(Object.keys(base.security!).sort()).toEqual(['certTtlMs', 'mtls', 'trustDomain'])
    for (const key of ['dependsOnConditions', 'optionalDependsOn', 'restart', 'maxRestarts', 'watch', 'profiles']) expect(api, key).toHaveProperty(key)
    expect(base.services.map((s) => s.protocol)).toEqual([undefined, 'grpc', undefined, 'tcp'])
    expect(base.functions).toEqual({accountConcurrency: 10})
    expect(base.services.find((s) => s.name === 'db')!.versions[0].scaling).toHaveProperty('reservedConcurrency', 4)
  })

  test('an unchanged mesh.yaml is no change', async () => {
    const same = new ConfigApply(fakeHost(structuredClone(base)))
    expect(same.planFor(structuredClone(base))).toEqual({changes: [], notApplied: [], warnings: []})
    expect(await same.applyConfig(structuredClone(base))).toEqual({changes: [], notApplied: [], warnings: []})
  })

  test('an edit of any one field is applied or named as needing mesh down && mesh up, by apply and by --dry-run', async () => {
    let walked = 0
    for (const {at, edited} of everyEdit(base)) {
      walked++
      expectReported(`${at} (dry run)`, new ConfigApply(fakeHost(structuredClone(base))).planFor(structuredClone(edited)))
      expectReported(at, await new ConfigApply(fakeHost(structuredClone(base))).applyConfig(structuredClone(edited)))
    }
    expect(walked).toBeGreaterThan(150)
  })

  test('the fields apply cannot change live are named, as mesh.yaml spells them', () => {
    const edit = (fn: (c: MeshConfig) => void) => {
      const c = structuredClone(base)
      fn(c)
      return new ConfigApply(fakeHost(structuredClone(base))).planFor(c).notApplied
    }
    expect(edit((c) => (c.name = 'other'))).toEqual([`name changed: restart the mesh (\`${RESTART}\`) for that`])
    expect(edit((c) => (c.faults.inject = []))).toEqual([`faults.inject changed: restart the mesh (\`${RESTART}\`) for that`])
    expect(edit((c) => (c.services[0].stopGracePeriodMs = 1000))).toEqual([`services.api.stopGracePeriod changed: restart the mesh (\`${RESTART}\`) for that`])
    expect(edit((c) => (c.services[0].profiles = ['debug']))).toEqual([`services.api.profiles changed: restart the mesh (\`${RESTART}\`) for that`])
    // The CA and every certificate are made at mesh up.
    expect(edit((c) => (c.security!.certTtlMs = 60_000))).toEqual([`security changed: restart the mesh (\`${RESTART}\`) for that`])
  })

  test("functions.accountConcurrency and a version's reservedConcurrency apply live, without a restart", async () => {
    const host = fakeHost(structuredClone(base))
    const apply = new ConfigApply(host)
    const raised = load(EVERY_KEY.replace('functions: {accountConcurrency: 10}', 'functions: {accountConcurrency: 50}').replace('reservedConcurrency: 4}', 'reservedConcurrency: 3}'))
    expect(apply.planFor(structuredClone(raised))).toEqual({changes: ['db: v1 scaling changed', 'functions: accountConcurrency 10 → 50'], notApplied: [], warnings: []})
    const done = await apply.applyConfig(structuredClone(raised))
    expect(done.notApplied).toEqual([])
    expect(done.changes).toEqual(['db: v1 scaling changed (the autoscaler follows it from its next decision)', 'functions: accountConcurrency 10 → 50'])
    expect(host.config.functions).toEqual({accountConcurrency: 50})
    expect(host.config.services.find((s) => s.name === 'db')!.versions[0].scaling?.reservedConcurrency).toBe(3)
    // functions: gone is no account limit any more.
    const none = load(EVERY_KEY.replace('functions: {accountConcurrency: 10}\n', ''))
    expect((await apply.applyConfig(structuredClone(none))).changes).toContain('functions: accountConcurrency 50 → none')
    expect(host.config).not.toHaveProperty('functions')
  })

  test('functions.accountConcurrency raised: requests the account held go at once, not at the next request or release', async () => {
    const clock = new VirtualClock()
    const config = structuredClone(base)
    const account = new ConcurrencyAccount(() => config.functions?.accountConcurrency)
    const gate = new ConcurrencyGate('db', 'v1', {containerConcurrency: 0, maxScale: 4, queue: 5, activatorTimeoutMs: 60_000}, account, clock)
    gate.setInstances(['db-v1-0'])
    const admitted: number[] = []
    const waiter = (i: number) => ({admitted: () => void admitted.push(i), refused: () => undefined})
    const entries = Array.from({length: 12}, (_, i) => gate.enter(waiter(i)))
    expect(entries.filter((e) => e === 'admitted')).toHaveLength(10)
    expect(gate.held).toBe(2)
    const raised = load(EVERY_KEY.replace('functions: {accountConcurrency: 10}', 'functions: {accountConcurrency: 11}'))
    await new ConfigApply(fakeHost(config, account)).applyConfig(raised)
    expect(admitted).toEqual([10])
    expect(gate.held).toBe(1)
  })

  test('telemetry.otlp added, moved and removed, and fault headers, apply live', async () => {
    const without = load(EVERY_KEY.replace('  otlp: {endpoint: http://127.0.0.1:4318}\n', ''))
    const host = fakeHost(structuredClone(without))
    const apply = new ConfigApply(host)
    expect((await apply.applyConfig(structuredClone(base))).changes).toEqual(['telemetry: OTLP push to http://127.0.0.1:4318 started'])
    expect(host.telemetry.settings().otlpEndpoint).toBe('http://127.0.0.1:4318')
    const moved = structuredClone(base)
    moved.telemetry!.otlpEndpoint = 'http://127.0.0.1:4319'
    expect((await apply.applyConfig(structuredClone(moved))).changes).toEqual(['telemetry: OTLP push http://127.0.0.1:4318 → http://127.0.0.1:4319'])
    expect((await apply.applyConfig(structuredClone(without))).changes).toEqual(['telemetry: OTLP push to http://127.0.0.1:4319 stopped'])
    expect(host.telemetry.settings().otlpEndpoint).toBeUndefined()
    expect(await apply.applyConfig(structuredClone(without))).toEqual({changes: [], notApplied: [], warnings: []})

    const closed = structuredClone(without)
    closed.faults.allowHeaders = false
    expect((await apply.applyConfig(closed)).changes).toEqual(['faults: x-mesh-fault-* request headers ignored (allowHeaders: false)'])
    expect(host.dataPlane.allowFaultHeaders).toBe(false)
    await host.telemetry.close()
  })
})
