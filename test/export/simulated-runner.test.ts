// The runner image's entry point, run with the environment an exported Deployment gives it:
// the simulated service starts from it, listens on every interface as a pod must, answers its
// health check and its requests, and stops on SIGTERM within the grace period.
import {execa} from 'execa'
import os from 'node:os'
import path from 'node:path'
import {request} from 'undici'
import {expect, test} from 'vitest'
import {loadConfig} from '../../src/sim/config/load-config.js'
import {exportKubernetes} from '../../src/sim/export/export-kubernetes.js'
import {freePort} from '../../src/sim/control/ports.js'
import {eventually, ROOT} from '../helpers/mesh.js'

type Json = Record<string, any>

test("the shop's catalog Deployment's env runs the simulated service, reachable at a non-loopback address", async () => {
  const config = await loadConfig(path.join(ROOT, 'templates/shop/mesh.yaml'))
  const catalog = exportKubernetes(config, {target: 'istio', runnerImage: 'runner:test'}).manifests.find((m) => m.object.kind === 'Deployment' && m.object.metadata?.name === 'catalog-v1')!
  const container = (catalog.object.toJSON() as Json).spec.template.spec.containers[0]
  const port = await freePort()
  const env: Record<string, string> = {}
  for (const e of container.env as Json[]) env[e.name] = e.value ?? 'catalog-v1-abc12'
  env.PORT = String(port)
  // Its dependencies are cluster names here, which do not resolve: calls fail, the service still answers.
  const host = Object.values(os.networkInterfaces()).flat().find((a) => a && a.family === 'IPv4' && !a.internal)?.address ?? '127.0.0.1'
  const runner = execa('node', [path.join(ROOT, 'dist/sim/model/simulated-service-main.js')], {env: {...env, PATH: process.env.PATH ?? ''}, extendEnv: false, reject: false})
  try {
    await eventually(async () => {
      const health = await request(`http://${host}:${port}/healthz`)
      await health.body.dump()
      return health.statusCode === 200
    }, 10_000)
    const res = await request(`http://${host}:${port}/items`)
    const body = (await res.body.json()) as Json
    expect(body).toMatchObject({service: 'catalog', version: 'v1', path: '/items'})
  } finally {
    runner.kill('SIGTERM')
  }
  const done = await runner
  expect(done.stdout).toContain(`listening on 0.0.0.0:${port}`)
  expect(done.exitCode).toBe(0)
}, 30_000)
