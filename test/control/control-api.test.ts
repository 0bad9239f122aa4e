// The control API's one route map (api.ts) against what is served: the daemon answers every
// route of the map and nothing else, and a body a stranger sends malformed is a 400 that
// says what is wrong, never a crash or a 500.
import http from 'node:http'
import net from 'node:net'
import {afterAll, beforeAll, describe, expect, test} from 'vitest'
import {type ControlHandlers, controlRoutes, controlStreams, type RouteKey, splitRoute} from '../../src/sim/control/api.js'
import {ControlServer} from '../../src/sim/control/control-server.js'
import {connect} from '../../src/sim/control/control-client.js'
import {meshPaths, readToken} from '../../src/sim/control/state-file.js'
import {downMesh, upMesh} from '../helpers/mesh.js'

const ROUTES = Object.keys(controlRoutes) as RouteKey[]

function raw(url: string, method: string, token: string, body?: string): Promise<{status: number; json: {error?: {code: string; message: string}}}> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, {method, headers: {authorization: `Bearer ${token}`, 'content-type': 'application/json'}, agent: false}, (res) => {
      // A stream (tap) answers its head and goes on: its status is all this needs.
      if (res.headers['content-type'] === 'application/x-ndjson') {
        resolve({status: res.statusCode ?? 0, json: {}})
        req.destroy()
        return
      }
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({status: res.statusCode ?? 0, json: JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}')}))
    })
    req.on('error', reject)
    req.end(body)
  })
}

describe('ControlServer.serve', () => {
  const handlers = Object.fromEntries(ROUTES.map((k) => [k, () => ({})])) as unknown as ControlHandlers

  test('serves exactly the routes of the map', () => {
    const served = new ControlServer('t').serve(handlers).served()
    expect(served.sort()).toEqual([...ROUTES].sort())
  })

  test('refuses a handler set that misses a route of the map, or has one the map does not', () => {
    const {['GET /v1/tcp']: _, ...missing} = handlers
    expect(() => new ControlServer('t').serve(missing as ControlHandlers)).toThrow(/missing GET \/v1\/tcp/)
    const extra = {...handlers, 'GET /v1/secret': () => ({})}
    expect(() => new ControlServer('t').serve(extra as ControlHandlers)).toThrow(/not in the map GET \/v1\/secret/)
  })
})

describe('ControlServer bodies', () => {
  /** Sends `headers` and `sent` without ending the request: the answer must come before the body does. */
  function unfinished(url: string, headers: Record<string, string | number>, sent: string): Promise<{status: number; json: {error?: {message: string}}; connection?: string}> {
    return new Promise((resolve, reject) => {
      const req = http.request(url, {method: 'POST', headers: {authorization: 'Bearer t', ...headers}, agent: false}, (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => {
          resolve({status: res.statusCode ?? 0, json: JSON.parse(Buffer.concat(chunks).toString('utf8')), connection: res.headers.connection})
          req.destroy()
        })
      })
      req.on('error', reject)
      if (sent) req.write(sent)
      else req.flushHeaders()
    })
  }

  test('a body past the limit is a 400 answered before it ends, and the handler never runs', async () => {
    let called = 0
    const handlers = Object.fromEntries(ROUTES.map((k) => [k, () => ++called])) as unknown as ControlHandlers
    const server = new ControlServer('t', 1024).serve(handlers)
    const url = (await server.listen()) + '/v1/stop'
    try {
      const declared = await unfinished(url, {'content-length': 10 * 1024 * 1024}, '')
      const streamed = await unfinished(url, {'transfer-encoding': 'chunked'}, `{"services": ["${'x'.repeat(2048)}"]}`)
      for (const r of [declared, streamed]) {
        expect(r.status).toBe(400)
        expect(r.json.error?.message).toMatch(/the body is larger than 1024 bytes/)
        expect(r.connection).toBe('close')
      }
      expect(called).toBe(0)
    } finally {
      await server.close()
    }
  })
})

test('a request target that is no URL is a 400, answered before the token is asked for', async () => {
  const server = new ControlServer('t')
  const port = Number(new URL(await server.listen()).port)
  try {
    const head = await new Promise<string>((resolve, reject) => {
      const socket = net.connect(port, '127.0.0.1', () => socket.write('GET http://[ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'))
      const chunks: Buffer[] = []
      socket.on('data', (d: Buffer) => chunks.push(d))
      socket.once('end', () => resolve(Buffer.concat(chunks).toString('utf8')))
      socket.once('error', reject)
    })
    expect(head).toMatch(/^HTTP\/1.1 400 /)
    expect(head).toMatch(/"code":"MESH_BAD_REQUEST".*http:\/\/\[.* is not a request path/)
  } finally {
    await server.close()
  }
})

describe('the daemon against the route map', () => {
  let dir: string
  let url: string
  let token: string

  beforeAll(async () => {
    ;({dir} = await upMesh(() => `
name: control-api
services:
  world:
    simulate: {latency: 1ms}
`))
    url = connect(meshPaths(dir)).state.controlUrl
    token = readToken(meshPaths(dir))!
  }, 60_000)

  afterAll(async () => {
    if (dir) await downMesh(dir)
  }, 30_000)

  test('every route of the map is served (the daemon has no route the map lacks: serve() refuses one)', async () => {
    // POST /v1/down last: it stops the mesh.
    for (const key of ROUTES.filter((k) => k !== 'POST /v1/down')) {
      const {method, path} = splitRoute(key)
      // POSTs get a malformed body: checked before any handler runs, so nothing changes.
      const r = await raw(url + path, method, token, method === 'POST' ? '[1]' : undefined)
      expect(r.status, key).not.toBe(404)
      expect(r.status, key).toBeLessThan(500)
    }
    for (const path of Object.keys(controlStreams)) expect((await raw(url + path, 'GET', token)).status, path).toBe(200)
    expect((await raw(`${url}/v1/nosuch`, 'GET', token)).status).toBe(404)
  })

  test.each([
    ['POST /v1/stop', '{"services": "world"}', /"services" must be a list of strings/],
    ['POST /v1/stop', '', /the body must be a JSON object/],
    ['POST /v1/start', '{"services": ["world"], "profiles": [1]}', /"profiles\[0\]" must be a string/],
    ['POST /v1/apply', '{"env": {"A": 1}}', /"env.A" must be a string/],
    ['POST /v1/faults', 'null', /the body must be a JSON object/],
    ['POST /v1/faults', '{"service": "world"}', /"kind" must be one of delay, abort, .*, kill, pause/],
    ['POST /v1/faults', '{"service": "world", "kind": "delay", "delayMs": "10ms"}', /"delayMs" must be a number/],
    ['POST /v1/faults', '{"service": "world", "kind": "abort", "header": {"name": "x"}}', /"header.value" must be a string/],
    ['POST /v1/deploys', '{"service": "world", "to": "v2", "strategy": "rolling"}', /"progressDeadlineMs" must be a number/],
    ['POST /v1/deploys', '{"service": "world", "to": "v2", "strategy": "canary", "progressDeadlineMs": 1000, "canary": {"steps": [10, "x"]}}', /"canary.steps\[1\]" must be a number/],
    ['POST /v1/rollback', '{not json', /the body is not JSON/],
    ['GET /v1/stat', '?by=colour', /"by" must be one of service, version, instance, edge/],
    ['POST /v1/faults', '{"service": "world", "kind": "cert", "cert": "stale"}', /"cert" must be one of expired, untrusted, wrong-identity/],
    ['POST /v1/certs/rotate', '{"service": 1}', /"service" must be a string/],
  ] as const)('%s with %s is a 400 that says what is wrong', async (key, input, message) => {
    const {method, path} = splitRoute(key)
    const r = method === 'GET' ? await raw(url + path + input, method, token) : await raw(url + path, method, token, input)
    expect(r.status).toBe(400)
    expect(r.json.error?.code).toBe('MESH_BAD_REQUEST')
    expect(r.json.error?.message).toMatch(message)
  })

  test('the daemon keeps serving after malformed bodies', async () => {
    const status = await connect(meshPaths(dir)).status()
    expect(status.services.map((s) => s.name)).toEqual(['world'])
  })
})
