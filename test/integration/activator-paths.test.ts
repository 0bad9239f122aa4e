// Every way into a scaled service goes through its activator, not only the mesh's own
// routes: a call to an instance's published address (the registry's inbound address) takes
// a slot on that instance, is held while it is busy or still cold-starting, and gives the
// slot back however it ends (answered, or its client leaving). One mesh, a few requests.
import {request} from 'undici'
import {afterAll, beforeAll, describe, expect, test} from 'vitest'
import {ControlClient} from '../../src/sim/control/control-client.js'
import {meshPaths, readState, readToken} from '../../src/sim/control/state-file.js'
import type {InstanceStatus} from '../../src/sim/control/status.js'
import {downMesh, eventually, get, upMesh} from '../helpers/mesh.js'

const yaml = (port: number) => `
name: activator-paths
ingress:
  port: ${port}
  routes: [{prefix: /busy, service: busy}, {prefix: /cold, service: cold}]
services:
  busy:
    simulate: {latency: 1500ms}
    scaling: {minScale: 1, maxScale: 1, containerConcurrency: 1, queue: 5}
  cold:
    simulate: {latency: 10ms, coldStart: 2s}
    scaling: {minScale: 0, initialScale: 0, maxScale: 1, containerConcurrency: 1}
`

let dir = ''
let ingress = ''
let control: ControlClient
beforeAll(async () => {
  ;({dir, ingress} = await upMesh(yaml))
  control = new ControlClient(readState(meshPaths(dir))!, readToken(meshPaths(dir))!)
}, 60_000)
afterAll(async () => {
  if (dir) await downMesh(dir)
})

const activatorOf = async (service: string) => (await control.status()).services.find((s) => s.name === service)!.load?.activator?.v1
const instancesOf = async (service: string): Promise<InstanceStatus[]> => (await control.status()).services.find((s) => s.name === service)!.instances

describe('published addresses of scaled services go through the activator', () => {
  test('containerConcurrency 1: calls to the published address take the slot one at a time; one that leaves while held gives its place back', async () => {
    const [instance] = await eventually(async () => {
      const all = await instancesOf('busy')
      return all.length === 1 && all[0].health === 'healthy' ? all : undefined
    })
    const published = `http://${instance.inboundAddress}`
    const first = get(published)
    await eventually(async () => (await activatorOf('busy'))?.inFlight === 1, 10_000, 50)
    const second = get(published)
    const controller = new AbortController()
    const leaving = request(published, {signal: controller.signal}).catch((e: Error) => e)
    const held = await eventually(async () => {
      const load = await activatorOf('busy')
      return load?.held === 2 ? load : undefined
    }, 10_000, 50)
    expect(held).toEqual({inFlight: 1, held: 2})
    controller.abort()
    expect(await leaving).toBeInstanceOf(Error)
    await eventually(async () => (await activatorOf('busy'))?.held === 1, 10_000, 50)
    const [a, b] = await Promise.all([first, second])
    expect([a.status, b.status]).toEqual([200, 200])
    expect((await activatorOf('busy'))).toEqual({inFlight: 0, held: 0})
  }, 30_000)

  test('a call to a cold-starting instance\'s published address is held until it is ready, then served', async () => {
    // The mesh's route starts one from zero; its published address exists before it listens.
    const viaMesh = get(`${ingress}/cold`)
    const [starting] = await eventually(async () => {
      const all = await instancesOf('cold')
      return all.length === 1 && all[0].health === 'starting' ? all : undefined
    }, 10_000, 20)
    const direct = await get(`http://${starting.inboundAddress}`)
    expect(direct.status, direct.text).toBe(200)
    expect(Number(direct.headers['x-mesh-cold-start'])).toBeGreaterThan(0)
    expect((await viaMesh).status).toBe(200)
    expect(await activatorOf('cold')).toEqual({inFlight: 0, held: 0})
  }, 30_000)
})
