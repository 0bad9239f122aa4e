// A compose project whose services are commands (two Node.js servers, the front one calling
// the other by compose's host name), imported with `mesh import compose` and run with
// `mesh up -d`: a request through the ingress reaches both, as `docker compose up` would serve it.
import {writeFileSync} from 'node:fs'
import path from 'node:path'
import {afterAll, beforeAll, expect, test} from 'vitest'
import {downMesh, freePort, get, mesh} from '../helpers/mesh.js'
import {tempDir} from '../import/compose-helpers.js'

let dir: string
let ingress: number
let up = false

/** Three different free ports: the published one (the ingress) and the two containers'. */
async function threePorts(): Promise<[number, number, number]> {
  const ports = new Set<number>()
  while (ports.size < 3) ports.add(await freePort())
  return [...ports] as [number, number, number]
}

beforeAll(async () => {
  dir = tempDir()
  const [published, webPort, apiPort] = await threePorts()
  ingress = published
  // Written as for compose: fixed container ports, the dependency by its service name.
  writeFileSync(path.join(dir, 'api.js'), `
    require('node:http').createServer((req, res) => {
      res.writeHead(200, {'content-type': 'text/plain'})
      res.end(req.url === '/healthz' ? 'ok' : 'items from api')
    }).listen(Number(process.env.PORT || ${apiPort}), '127.0.0.1')
  `)
  writeFileSync(path.join(dir, 'web.js'), `
    require('node:http').createServer(async (req, res) => {
      try {
        const answer = await fetch(process.env.API_URL + '/items')
        res.writeHead(200, {'content-type': 'text/plain'})
        res.end('web got: ' + (await answer.text()))
      } catch (error) {
        res.writeHead(502)
        res.end(String(error))
      }
    }).listen(Number(process.env.PORT || ${webPort}), '127.0.0.1')
  `)
  writeFileSync(path.join(dir, 'package.json'), '{"type": "commonjs"}')
  writeFileSync(
    path.join(dir, 'compose.yaml'),
    `name: imported-shop
services:
  web:
    image: node:20
    command: ["node", "web.js"]
    ports: ["${published}:${webPort}"]
    environment:
      API_URL: http://api:${apiPort}
    depends_on:
      api: {condition: service_healthy}
  api:
    image: node:20
    command: node api.js
    expose: [${apiPort}]
    healthcheck:
      test: ["CMD", "curl", "-f", "http://localhost:${apiPort}/healthz"]
      interval: 1s
      retries: 3
    volumes: [./data:/data]
`,
  )
}, 60_000)

afterAll(async () => {
  if (up) await downMesh(dir)
}, 60_000)

test('imports, starts with mesh up -d, and serves a request through both services', async () => {
  const imported = await mesh(dir, ['import', 'compose'])
  expect(imported.exitCode, imported.stderr).toBe(0)
  expect(imported.stderr).toContain('compose.yaml:19:5 services.api.volumes: not carried over: ')

  const started = await mesh(dir, ['up', '-d'], {timeoutMs: 90_000})
  up = started.exitCode === 0
  expect(started.exitCode, started.stderr + started.stdout).toBe(0)

  const reply = await get(`http://127.0.0.1:${ingress}/`)
  expect(reply.status, reply.text).toBe(200)
  expect(reply.text).toBe('web got: items from api')
  // The answer came through the mesh: its sidecar named the instance.
  expect(reply.headers['x-mesh-upstream']).toMatch(/^web-v1-0/)
}, 120_000)
