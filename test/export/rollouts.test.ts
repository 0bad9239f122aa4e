// `mesh export kubernetes --rollouts argo|flagger`: every template, with deploy: blocks of each
// strategy on its services, exports for each mesh to objects that pass their schemas (Argo's
// CRD schemas; Flagger's fields against rollouts-flagger-schema.ts), the same bytes twice; the shop's
// are golden files (UPDATE_GOLDEN=1 rewrites them); and what has no equivalent is reported.
import {readdirSync, readFileSync, writeFileSync} from 'node:fs'
import path from 'node:path'
import {parseAllDocuments} from 'yaml'
import {describe, expect, test} from 'vitest'
import {loadConfig} from '../../src/sim/config/load-config.js'
import type {DeployConfig, MeshConfig} from '../../src/sim/config/types.js'
import {exportKubernetes, MESH_TARGETS} from '../../src/sim/export/export-kubernetes.js'
import {manifestsYaml, validateManifests} from '../../src/sim/export/manifest-writer.js'
import type {RolloutTarget} from '../../src/sim/export/rollouts.js'
import {parsed, yaml as meshYaml} from '../config/helpers.js'
import {ROOT} from '../helpers/mesh.js'

const RUNNER = 'meshsim-simulated-service:test'
const GOLDEN = path.join(ROOT, 'test/export/golden')
const ROLLOUTS = ['argo', 'flagger'] as const satisfies readonly RolloutTarget[]
const templates = readdirSync(path.join(ROOT, 'templates'))

/** One of each strategy, with every key it takes, in turn over the services. */
const BLOCKS: DeployConfig[] = [
  {strategy: 'canary', steps: [5, 25, 50], intervalMs: 90_000, maxErrorRate: 0.02, maxP99Ms: 250, failureThreshold: 3, minRequests: 10, match: {name: 'x-canary', value: 'true'}, mirror: true, check: 'npm run e2e', compareToPrimary: true, progressDeadlineMs: 120_000},
  {strategy: 'blue-green', smoke: 'GET /healthz', keepMs: 30_000, check: 'make smoke'},
  {strategy: 'rolling', maxSurge: 2, maxUnavailable: 1},
]

async function withDeploys(template: string): Promise<MeshConfig> {
  const config = await loadConfig(path.join(ROOT, 'templates', template, 'mesh.yaml'))
  config.services.forEach((s, i) => (s.deploy ??= BLOCKS[i % BLOCKS.length]))
  return config
}

type Doc = {apiVersion: string; kind: string; metadata: {name: string}; spec: Record<string, unknown>}

function exported(config: MeshConfig, target: (typeof MESH_TARGETS)[number], rollouts: RolloutTarget) {
  const result = exportKubernetes(config, {target, rollouts, runnerImage: RUNNER})
  validateManifests(result.manifests)
  const yaml = manifestsYaml(result.manifests, 'test')
  return {result, yaml, docs: parseAllDocuments(yaml).map((d) => d.toJS() as Doc)}
}

describe.each(templates)('the %s template, each service with a deploy: block', (template) => {
  test.each(MESH_TARGETS.flatMap((mesh) => ROLLOUTS.map((rollouts) => [mesh, rollouts] as const)))('--mesh %s --rollouts %s: every object valid, the same bytes twice', async (mesh, rollouts) => {
    const first = exported(await withDeploys(template), mesh, rollouts)
    expect(exported(await withDeploys(template), mesh, rollouts).yaml).toBe(first.yaml)
    const kinds = first.docs.map((d) => d.kind)
    const config = await withDeploys(template)
    const controlled = config.services.filter((s) => s.deploy?.strategy !== 'rolling' && !first.result.losses.some((l) => l.path === `services.${s.name}.deploy` && /Knative|Job|outside/.test(l.reason)))
    // One Rollout or Canary per service whose deploy a controller carries.
    expect(kinds.filter((k) => k === (rollouts === 'argo' ? 'Rollout' : 'Canary'))).toHaveLength(controlled.length)
    for (const s of controlled) {
      // The stable version's workload is the controller's; no other version runs beside it.
      const deployments = first.docs.filter((d) => d.kind === 'Deployment' && d.metadata.name.startsWith(`${s.name}-`)).map((d) => d.metadata.name)
      expect(deployments).toEqual(rollouts === 'argo' ? [] : [`${s.name}-${s.versions[0].name}`])
    }
    // A rolling deploy is the Deployments' own RollingUpdate.
    for (const s of config.services.filter((x) => x.deploy?.strategy === 'rolling' && x.restart === undefined && !(x.versions.length === 1 && x.versions[0].scaling))) {
      for (const d of first.docs.filter((x) => x.kind === 'Deployment' && x.metadata.name.startsWith(`${s.name}-`))) {
        expect(d.spec.strategy).toEqual({type: 'RollingUpdate', rollingUpdate: {maxSurge: 2, maxUnavailable: 1}})
      }
    }
  }, 60_000)
})

describe('the shop template (recommendations has a deploy: block): golden files', () => {
  test.each(MESH_TARGETS.flatMap((mesh) => ROLLOUTS.map((rollouts) => [mesh, rollouts] as const)))('--mesh %s --rollouts %s', async (mesh, rollouts) => {
    const config = await loadConfig(path.join(ROOT, 'templates/shop/mesh.yaml'))
    const {result} = exported(config, mesh, rollouts)
    // The service the controller takes, and the ingress whose routes to it change: the rest is as without --rollouts.
    const yaml = manifestsYaml(result.manifests.filter((m) => m.file === 'recommendations'), `mesh export kubernetes --mesh ${mesh} --rollouts ${rollouts} of templates/shop: recommendations.yaml`)
    const losses = `${JSON.stringify(result.losses.filter((l) => l.path.startsWith('services.recommendations')), null, 2)}\n`
    const files = {yaml: path.join(GOLDEN, `shop-${mesh}-${rollouts}.yaml`), losses: path.join(GOLDEN, `shop-${mesh}-${rollouts}-losses.json`)}
    if (process.env.UPDATE_GOLDEN) {
      writeFileSync(files.yaml, yaml)
      writeFileSync(files.losses, losses)
    }
    expect(yaml).toBe(readFileSync(files.yaml, 'utf8'))
    expect(losses).toBe(readFileSync(files.losses, 'utf8'))
  })
})

const fixture = (deploy: string, policy = '') =>
  parsed(meshYaml('name: shop', 'services:', '  api:', '    versions:', '      v1: {simulate: {}}', '      v2: {simulate: {}}', `    deploy: ${deploy}`, ...(policy ? [`    policy: ${policy}`] : [])))

describe('what has no equivalent is reported, with the nearest', () => {
  test('--rollouts none: a canary deploy: is one loss, the Deployments as they are', () => {
    const {result, docs} = exported(fixture('{steps: [10, 100]}'), 'istio', 'none')
    expect(result.losses.filter((l) => l.path.startsWith('services.api.deploy'))).toEqual([
      {path: 'services.api.deploy', reason: expect.stringContaining('a Deployment replaces pods'), nearest: expect.stringContaining('--rollouts flagger or --rollouts argo')},
    ])
    expect(docs.filter((d) => d.kind === 'Deployment').map((d) => d.metadata.name)).toEqual(['api-v1', 'api-v2'])
  })

  test('Flagger: a header match and a mirror before the steps have no place beside weights; Argo (Istio) says them as managed routes', () => {
    const block = '{steps: [20, 100], interval: 1m, match: {x-canary: "yes"}, mirror: true}'
    const flagger = exported(fixture(block), 'istio', 'flagger')
    const paths = flagger.result.losses.map((l) => l.path)
    expect(paths).toEqual(expect.arrayContaining(['services.api.deploy.match', 'services.api.deploy.mirror', 'services.api.versions.v2']))
    expect(flagger.result.losses.find((l) => l.path === 'services.api.deploy.match')?.nearest).toBe('the weighted steps alone')
    const argo = exported(fixture(block), 'istio', 'argo')
    expect(argo.result.losses.map((l) => l.path)).not.toContain('services.api.deploy.match')
    const rollout = argo.docs.find((d) => d.kind === 'Rollout')!
    const canary = (rollout.spec.strategy as {canary: {steps: unknown[]; trafficRouting: {managedRoutes: unknown}}}).canary
    expect(canary.steps).toEqual([
      {setHeaderRoute: {name: 'canary-header', match: [{headerName: 'x-canary', headerValue: {exact: 'yes'}}]}},
      {pause: {duration: '60s'}},
      {setHeaderRoute: {name: 'canary-header'}},
      {setMirrorRoute: {name: 'canary-mirror', percentage: 100, match: [{path: {prefix: '/'}}]}},
      {pause: {duration: '60s'}},
      {setMirrorRoute: {name: 'canary-mirror'}},
      {setWeight: 20},
      {pause: {duration: '60s'}},
    ])
    expect(canary.trafficRouting.managedRoutes).toEqual([{name: 'canary-header'}, {name: 'canary-mirror'}])
  })

  test('the weights of mesh.yaml give way to the controller\'s split, and are reported', () => {
    const {result, docs} = exported(fixture('{steps: [50]}', '{weights: {v1: 90, v2: 10}}'), 'istio', 'argo')
    expect(result.losses.find((l) => l.path === 'services.api.policy.weights')?.reason).toContain('Argo Rollouts sets the service\'s traffic split itself')
    const vs = docs.find((d) => d.kind === 'VirtualService' && d.metadata.name === 'api')!
    const route = (vs.spec.http as Array<{route: Array<{destination: {subset: string}; weight: number}>}>)[0].route
    expect(route.map((r) => [r.destination.subset, r.weight])).toEqual([['stable', 100], ['canary', 0]])
  })

  test('Flagger: thresholds as the built-in metrics, failureThreshold as threshold, check as a pre-rollout webhook', () => {
    const {docs, result} = exported(fixture('{steps: [10, 40, 100], interval: 2m, maxErrorRate: 2%, maxP99: 400ms, failureThreshold: 4, check: npm test}'), 'istio', 'flagger')
    const canary = docs.find((d) => d.kind === 'Canary')!
    expect(canary.spec.analysis).toEqual({
      interval: '120s',
      threshold: 4,
      stepWeights: [10, 40],
      metrics: [
        {name: 'request-success-rate', interval: '120s', thresholdRange: {min: 98}},
        {name: 'request-duration', interval: '120s', thresholdRange: {max: 400}},
      ],
      webhooks: [{name: 'check', type: 'pre-rollout', url: 'http://flagger-loadtester.shop/', timeout: '60s', metadata: {type: 'bash', cmd: 'CANARY_URL=http://api-canary.shop:80 CANARY_URLS=http://api-canary.shop:80 npm test'}}],
    })
    expect(result.losses.map((l) => l.path)).toContain('services.api.deploy.check')
    // Flagger writes the service's routing: ours for it are not written.
    expect(docs.filter((d) => d.metadata.name === 'api' && (d.kind === 'VirtualService' || d.kind === 'DestinationRule'))).toEqual([])
  })

  test('Linkerd: Argo routes the HTTPRoutes to the Service (stable and canary pods alike); Flagger writes its own, with MetricTemplates', () => {
    const argo = exported(fixture('{steps: [50]}', '{weights: {v1: 90, v2: 10}, timeout: 2s}'), 'linkerd', 'argo')
    const route = argo.docs.find((d) => d.kind === 'HTTPRoute' && d.metadata.name === 'api')!
    expect((route.spec.rules as Array<{backendRefs: unknown}>).map((r) => r.backendRefs)).toEqual([[{name: 'api', port: 80}]])
    expect(argo.docs.filter((d) => d.kind === 'Service').map((d) => d.metadata.name)).toEqual(['api'])
    expect(argo.result.losses.find((l) => l.path === 'services.api.deploy.steps')?.nearest).toContain('by pod count')
    const flagger = exported(fixture('{steps: [50], maxP99: 200ms}', '{weights: {v1: 90, v2: 10}, timeout: 2s}'), 'linkerd', 'flagger')
    expect(flagger.docs.filter((d) => d.kind === 'HTTPRoute')).toEqual([])
    expect(flagger.docs.filter((d) => d.kind === 'MetricTemplate').map((d) => d.metadata.name)).toEqual(['api-success-rate', 'api-latency'])
    const canary = flagger.docs.find((d) => d.kind === 'Canary')!
    expect(canary.spec.provider).toBe('gatewayapi:v1')
    expect((canary.spec.service as {gatewayRefs: unknown}).gatewayRefs).toEqual([{name: 'api', namespace: 'shop', group: 'core', kind: 'Service', port: 80}])
    expect(flagger.result.losses.map((l) => l.path)).toEqual(expect.arrayContaining(['services.api.policy.timeout', 'services.api.policy.weights']))
  })

  test('a rolling deploy: where there is no Deployment, and Flagger leaving the ingress on the primary, are reported', () => {
    const job = parsed(meshYaml('name: shop', 'services:', '  migrate:', '    simulate: {}', '    restart: "no"', '    deploy: {strategy: rolling, maxSurge: 2}'))
    expect(exported(job, 'none', 'none').result.losses.find((l) => l.path === 'services.migrate.deploy')?.reason).toContain('this one is a Job')
    const ingress = parsed(meshYaml('name: shop', 'ingress: {port: 8000, routes: [{prefix: /, service: api}]}', 'services:', '  api:', '    simulate: {}', '    deploy: {steps: [50]}'))
    const {result, docs} = exported(ingress, 'istio', 'flagger')
    expect(result.losses.find((l) => l.path === 'services.api.deploy.steps')?.reason).toContain("binds the mesh's sidecars")
    // The gateway's route goes to the Service's host, no subset (Flagger's DestinationRules have their own).
    const gatewayRoutes = docs.filter((d) => d.kind === 'VirtualService').flatMap((d) => d.spec.http as Array<{route: Array<{destination: {subset?: string}}>}>)
    expect(gatewayRoutes.flatMap((r) => r.route.map((x) => x.destination.subset))).toEqual([undefined])
  })

  test('Argo blue-green: activeService, a preview Service, keep as scaleDownDelaySeconds', () => {
    const {docs} = exported(fixture('{strategy: blue-green, keep: 2m}'), 'none', 'argo')
    expect((docs.find((d) => d.kind === 'Rollout')!.spec.strategy as {blueGreen: unknown}).blueGreen).toEqual({activeService: 'api', previewService: 'api-preview', autoPromotionEnabled: true, scaleDownDelaySeconds: 120})
    expect(docs.filter((d) => d.kind === 'Service').map((d) => d.metadata.name)).toEqual(['api', 'api-preview'])
  })
})

