// The workloads: what each kind of service becomes in a cluster, its environment with the
// cluster's addresses, probes from its health check, and the image it needs.
import {describe, expect, test} from 'vitest'
import {exportKubernetes} from '../../src/sim/export/export-kubernetes.js'
import {validateManifests} from '../../src/sim/export/manifest-writer.js'
import {Deployment} from 'kubernetes-models/apps/v1/Deployment'
import {commandArgs} from '../../src/sim/export/workloads.js'
import {parsed, problems, yaml} from '../config/helpers.js'

type Json = Record<string, any>

function exported(source: string, target: 'none' | 'istio' = 'none') {
  const result = exportKubernetes(parsed(source), {target, runnerImage: 'runner:test', namespace: 'prod'})
  validateManifests(result.manifests)
  const find = (kind: string, name: string): Json | undefined => result.manifests.find((x) => x.object.kind === kind && x.object.metadata?.name === name)?.object.toJSON() as Json
  const container = (name: string) => (find('Deployment', name) ?? find('Job', name))!.spec.template.spec.containers[0]
  const env = (name: string) => Object.fromEntries(container(name).env.map((e: Json) => [e.name, e.value ?? e.valueFrom]))
  return {result, find, container, env, paths: result.losses.map((l) => l.path)}
}

const services = (...lines: string[]) => yaml('name: demo', 'services:', ...lines.map((l) => `  ${l}`))

test('a command service: its image, its command as args, the cluster addresses of its dependencies, its probe and grace period', () => {
  const {find, container, env, paths} = exported(
    services(
      'web:',
      '  command: node server.js --port $PORT',
      '  image: ghcr.io/acme/web:1.2',
      '  dependsOn: [api, db]',
      '  env: {LOG: debug, FLAG: "on"}',
      '  health: {path: /ready, interval: 2s, timeout: 500ms, healthyThreshold: 2, unhealthyThreshold: 4}',
      '  stopGracePeriod: 30s',
      'api: {simulate: {latency: 1ms}}',
      'db:',
      '  protocol: tcp',
      '  command: postgres',
      '  image: postgres:16',
      '  port: 5432',
    ),
  )
  const web = container('web-v1')
  expect(web.image).toBe('ghcr.io/acme/web:1.2')
  expect(web.args).toEqual(['/bin/sh', '-c', 'node server.js --port $PORT'])
  expect(web.ports).toEqual([{name: 'http', containerPort: 8080, protocol: 'TCP'}])
  expect(env('web-v1')).toMatchObject({
    FLAG: 'on',
    LOG: 'debug',
    PORT: '8080',
    MESH_SERVICE: 'web',
    MESH_VERSION: 'v1',
    MESH_INSTANCE: {fieldRef: {fieldPath: 'metadata.name'}},
    API_URL: 'http://api.prod.svc.cluster.local:80',
    DB_HOST: 'db.prod.svc.cluster.local',
    DB_PORT: '5432',
    DB_ADDR: 'db.prod.svc.cluster.local:5432',
  })
  expect(env('web-v1').DB_URL).toBeUndefined()
  // The probe is readiness: meshsim takes an unhealthy instance out of rotation, never restarts it.
  expect(web.readinessProbe).toEqual({httpGet: {path: '/ready', port: 'http'}, periodSeconds: 2, timeoutSeconds: 1, successThreshold: 2, failureThreshold: 4})
  expect(web.livenessProbe).toBeUndefined()
  expect(find('Deployment', 'web-v1')!.spec.template.spec.terminationGracePeriodSeconds).toBe(30)
  expect(find('Service', 'db')!.spec.ports).toEqual([{name: 'tcp', port: 5432, targetPort: 'tcp', appProtocol: 'tcp'}])
  expect(container('db-v1').readinessProbe.tcpSocket).toEqual({port: 'tcp'})
  expect(paths).toEqual(['services.web.health.timeout'])
})

test('a simulated service runs in the runner image, its simulate: block in MESH_SIMULATE, listening on every interface', () => {
  const {container, env, find} = exported(services('api:', '  replicas: 3', '  simulate: {latency: {p50: 5ms, p99: 20ms}, errorRate: 0.1}'))
  expect(container('api-v1').image).toBe('runner:test')
  expect(container('api-v1').args).toBeUndefined()
  expect(JSON.parse(env('api-v1').MESH_SIMULATE)).toMatchObject({latency: {p50Ms: 5, p99Ms: 20}, errorRate: 0.1})
  expect(env('api-v1').MESH_LISTEN_HOST).toBe('0.0.0.0')
  expect(container('api-v1').readinessProbe.httpGet).toEqual({path: '/healthz', port: 'http'})
  expect(find('Deployment', 'api-v1')!.spec.replicas).toBe(3)
})

test('a command without image: the name compose would build, reported with how to build it', () => {
  const {container, result} = exported(services('web:', '  command: node server.js', '  cwd: ./web'))
  expect(container('web-v1').image).toBe('demo-web:v1')
  expect(container('web-v1').args).toEqual(['node', 'server.js'])
  expect(result.losses).toEqual([{path: 'services.web.image', reason: expect.any(String), nearest: expect.stringContaining('docker build -t demo-web:v1 ./web')}])
})

test('jobs: restart "no" never retries; on-failure:N retries N times; neither is health-checked', () => {
  const {find, paths} = exported(services('migrate:', '  command: ./migrate', '  image: m:1', '  restart: "no"', 'seed:', '  command: ./seed', '  image: s:1', '  restart: on-failure:3'))
  const migrate = find('Job', 'migrate-v1')!
  expect(migrate.spec.backoffLimit).toBe(0)
  expect(migrate.spec.template.spec.restartPolicy).toBe('Never')
  expect(migrate.spec.template.spec.containers[0].readinessProbe).toBeUndefined()
  expect(find('Job', 'seed-v1')!.spec).toMatchObject({backoffLimit: 3, template: {spec: {restartPolicy: 'OnFailure'}}})
  expect(paths).toEqual([])
})

test('a service-level setting met by each version is reported once', () => {
  const {paths} = exported(services('web:', '  command: node server.js', '  image: web:1', '  stopGracePeriod: 1500ms', '  health: {interval: 500ms}', '  versions: {v1: {}, v2: {}, v3: {}}'))
  expect(paths).toEqual(['services.web.health.interval', 'services.web.stopGracePeriod'])
})

test('health checks: gRPC and command probes', () => {
  const {container} = exported(
    services('rpc:', '  protocol: grpc', '  command: ./rpc', '  image: rpc:1', '  health: {grpc: shop.Ratings}', 'pg:', '  command: postgres', '  image: postgres:16', '  health: {command: pg_isready -p $PORT}'),
  )
  expect(container('rpc-v1').readinessProbe.grpc).toEqual({port: 8080, service: 'shop.Ratings'})
  expect(container('pg-v1').readinessProbe.exec).toEqual({command: ['/bin/sh', '-c', 'pg_isready -p $PORT']})
})

test('an address: with an image runs in the cluster on its port; a loopback one without is reported, not guessed', () => {
  const {container, find, result} = exported(services('cache:', '  protocol: tcp', '  address: 127.0.0.1:6379', '  image: redis:7', 'pg:', '  protocol: tcp', '  address: 127.0.0.1:5432', 'mail:', '  address: smtp.example.com:25'))
  expect(container('cache-v1').ports[0].containerPort).toBe(6379)
  expect(find('Service', 'pg')).toBeUndefined()
  expect(find('Service', 'mail')!.spec).toMatchObject({type: 'ExternalName', externalName: 'smtp.example.com'})
  expect(result.losses.map((l) => l.path)).toEqual(['services.pg.address'])
})

test("$(…) is the shell's command substitution, kept from Kubernetes' own $(VAR) expansion", () => {
  const {container, env} = exported(services('web:', '  command: node server.js --id $(hostname)', '  image: web:1', '  env: {GREETING: "hi $(whoami)"}', '  health: {command: test -n "$(cat /tmp/ready)"}'))
  expect(container('web-v1').args).toEqual(['/bin/sh', '-c', 'node server.js --id $$(hostname)'])
  expect(env('web-v1').GREETING).toBe('hi $$(whoami)')
  expect(container('web-v1').readinessProbe.exec.command[2]).toBe('test -n "$$(cat /tmp/ready)"')
})

test("the shell's syntax runs through sh, a plain command as its words", () => {
  expect(commandArgs('npm run start')).toEqual(['npm', 'run', 'start'])
  expect(commandArgs('PORT=1 node x.js && echo ok')).toEqual(['/bin/sh', '-c', 'PORT=1 node x.js && echo ok'])
})

test('with Istio the namespace asks for sidecar injection', () => {
  const {find} = exported(services('api: {simulate: {latency: 1ms}}'), 'istio')
  expect(find('Namespace', 'prod')!.metadata.labels['istio-injection']).toBe('enabled')
})

test('a scaling: service of several versions stays Deployments at their initial scale, its autoscaling reported', () => {
  const {find, paths} = exported(services('fn:', '  command: node fn.js', '  image: fn:1', '  scaling: {minScale: 1, maxScale: 5, target: 10}', '  versions: {v1: {}, v2: {}}'))
  expect(find('Deployment', 'fn-v1')!.spec.replicas).toBe(1)
  expect(paths).toEqual(['services.fn.versions.v1.scaling', 'services.fn.versions.v2.scaling'])
})

test('an object its schema refuses stops the export: a bug of the exporter, never written', () => {
  const broken = new Deployment({metadata: {name: 'x'}, spec: {selector: {}, template: {spec: {containers: [{name: 'x', ports: [{containerPort: 'http' as unknown as number}]}]}}}})
  expect(() => validateManifests([{file: 'x', object: broken}])).toThrow(/Deployment "x" that its schema refuses: .*containerPort must be integer/)
})

describe('image: in mesh.yaml', () => {
  test('is for command: and address:; a simulated service runs in the runner image', () => {
    expect(problems(services('api:', '  simulate: {latency: 1ms}', '  image: api:1'))).toEqual([
      expect.stringMatching(/^mesh\.yaml:5:5 services\.api\.image: a simulated service runs in the simulated-service runner image/),
    ])
  })
  test('a version takes its own', () => {
    const {container} = exported(services('web:', '  command: node server.js', '  image: web:1', '  versions:', '    v1: {}', '    v2: {image: web:2}'))
    expect([container('web-v1').image, container('web-v2').image]).toEqual(['web:1', 'web:2'])
  })
  test('is a container image reference', () => {
    expect(problems(services('web:', '  command: node server.js', '  image: "has spaces"'))).toEqual([expect.stringContaining('services.web.image: expected a container image like ghcr.io/acme/frontend:1.4')])
  })
})

describe('a scaling: service is a Knative Service (Knative\'s KPA is the autoscaler meshsim models)', () => {
  const fn = (...scaling: string[]) => services('fn:', '  command: node fn.js', '  image: fn:1', '  protocol: grpc', '  policy: {timeout: 2s}', `  scaling: {${scaling.join(', ')}}`, 'web:', '  simulate: {latency: 1ms, calls: [{service: fn}]}')

  test('its knobs as revision annotations, containerConcurrency in the spec; no Service or Deployment of ours beside it', () => {
    const {result, env, paths} = exported(fn('minScale: 1', 'maxScale: 5', 'target: 10', 'metric: rps', 'containerConcurrency: 4', 'window: 30s', 'scaleDownDelay: 2m'))
    const ksvc = result.manifests.find((m) => m.object.apiVersion === 'serving.knative.dev/v1')!.object.toJSON() as Json
    expect(ksvc.metadata.name).toBe('fn')
    expect(ksvc.spec.template.metadata.annotations).toEqual({
      'autoscaling.knative.dev/metric': 'rps',
      'autoscaling.knative.dev/target': '10',
      'autoscaling.knative.dev/target-utilization-percentage': '70',
      'autoscaling.knative.dev/min-scale': '1',
      'autoscaling.knative.dev/max-scale': '5',
      'autoscaling.knative.dev/initial-scale': '1',
      'autoscaling.knative.dev/window': '30s',
      'autoscaling.knative.dev/panic-window-percentage': '10',
      'autoscaling.knative.dev/panic-threshold-percentage': '200',
      'autoscaling.knative.dev/scale-down-delay': '120s',
    })
    const c = ksvc.spec.template.spec.containers[0]
    expect(ksvc.spec.template.spec.containerConcurrency).toBe(4)
    // Knative names its one port by protocol and sets $PORT itself.
    expect(c.ports).toEqual([{name: 'h2c', containerPort: 8080, protocol: 'TCP'}])
    expect(c.env.map((e: Json) => e.name)).not.toContain('PORT')
    expect(c.readinessProbe.tcpSocket).toEqual({port: 8080})
    expect(result.manifests.filter((m) => m.file === 'fn').map((m) => m.object.kind)).toEqual(['ServiceAccount', 'Service'])
    // Its callers reach it at the name Knative gives its own Service.
    expect(env('web-v1').FN_URL).toBe('http://fn.prod.svc.cluster.local:80')
    expect(paths).toEqual(['services.fn.policy.timeout'])
  })

  test('what only the cluster-wide config-autoscaler sets is reported, with the value to set there', () => {
    const {result} = exported(fn('scaleToZeroGracePeriod: 10s', 'maxScaleUpRate: 10', 'initialScale: 0', 'minScale: 0'))
    const lossAt = (p: string) => result.losses.find((l) => l.path === p)
    expect(lossAt('services.fn.scaling.scaleToZeroGracePeriod')?.nearest).toContain('scale-to-zero-grace-period: 10s')
    expect(lossAt('services.fn.scaling.maxScaleUpRate')?.nearest).toContain('max-scale-up-rate: "10"')
    expect(lossAt('services.fn.scaling.initialScale')?.reason).toContain('allow-zero-initial-scale')
  })

  test('with Istio, Knative routes to it itself: no VirtualService of ours, its policies reported', () => {
    const {result} = exported(fn('minScale: 1'), 'istio')
    const lossAt = (p: string) => result.losses.find((l) => l.path === p)
    expect(result.manifests.filter((m) => m.file === 'fn').map((m) => m.object.kind)).toEqual(['ServiceAccount', 'Service'])
    expect(lossAt('services.fn.policy.timeout')?.reason).toContain('Knative routes to its Services itself')
  })
})

test("with Istio a Job's sidecar runs as a native sidecar, so the pod ends when the job does", () => {
  const {find} = exported(services('migrate:', '  command: ./migrate', '  image: m:1', '  restart: "no"'), 'istio')
  expect(find('Job', 'migrate-v1')!.spec.template.metadata.annotations).toEqual({'sidecar.istio.io/nativeSidecar': 'true'})
})
