// The serverless template's function, run as the supervisor would run it, against a fake
// db reached via $DB_URL: it listens only after its init, says which invocation was its
// cold one, forwards the trace, and answers 502 with db's failure.
import http from 'node:http'
import {spawn, type ChildProcess} from 'node:child_process'
import {once} from 'node:events'
import type {AddressInfo} from 'node:net'
import path from 'node:path'
import {afterAll, beforeAll, describe, expect, it} from 'vitest'
import {templatesDir} from '../../src/sim/templates/templates.js'

const CWD = path.join(templatesDir(), 'serverless', 'api')
const INIT_MS = 200
const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'
const dbSeen: Array<{url: string; headers: http.IncomingHttpHeaders}> = []
let dbStatus = 200
let db: http.Server
let fn: ChildProcess
let fnUrl: string
let readyAfterMs: number

function start(env: Record<string, string>): ChildProcess {
  return spawn(process.execPath, ['handler.js'], {cwd: CWD, env: {PATH: process.env.PATH ?? '', PORT: '0', ...env}, stdio: ['ignore', 'pipe', 'pipe']})
}

beforeAll(async () => {
  db = http.createServer((req, res) => {
    dbSeen.push({url: req.url!, headers: req.headers})
    res.writeHead(dbStatus, {'content-type': 'application/json'})
    res.end(JSON.stringify({service: 'db', path: req.url}))
  })
  db.listen(0, '127.0.0.1')
  await once(db, 'listening')
  const t0 = performance.now()
  fn = start({MESH_INSTANCE: 'api-v1-0', INIT_MS: String(INIT_MS), DB_URL: `http://127.0.0.1:${(db.address() as AddressInfo).port}`})
  let out = ''
  while (!out.includes('\n')) out += String((await once(fn.stdout!, 'data'))[0])
  readyAfterMs = performance.now() - t0
  const match = /on 127\.0\.0\.1:(\d+)/.exec(out)
  if (!match) throw new Error(`the function did not say where it listens: ${out}`)
  fnUrl = `http://127.0.0.1:${match[1]}`
})

afterAll(() => {
  if (fn.exitCode === null) fn.kill('SIGKILL')
  db.closeAllConnections()
  db.close()
})

describe('serverless template: the api function', () => {
  it('listens only once its INIT_MS of init is over (the cold start has a part of its own)', () => {
    expect(readyAfterMs).toBeGreaterThanOrEqual(INIT_MS)
  })

  it('reads db through DB_URL, forwarding the trace; only its first invocation is a cold one', async () => {
    const first = await fetch(`${fnUrl}/`, {headers: {traceparent, 'x-request-id': 'r-1', cookie: 'private'}})
    expect(first.status).toBe(200)
    expect(await first.json()).toEqual({function: 'api', instance: 'api-v1-0', coldStart: true, db: {service: 'db', path: '/items'}})
    expect(dbSeen[0].headers).toMatchObject({traceparent, 'x-request-id': 'r-1'})
    expect(dbSeen[0].headers.cookie).toBeUndefined()
    const second = await fetch(`${fnUrl}/`)
    expect((await second.json()).coldStart).toBe(false)
  })

  it('answers 502 when db fails, 404 off its route, and /healthz', async () => {
    dbStatus = 503
    const failing = await fetch(`${fnUrl}/`)
    dbStatus = 200
    expect(failing.status).toBe(502)
    expect((await failing.json()).db).toEqual({service: 'db', path: '/items'})
    expect((await fetch(`${fnUrl}/nope`)).status).toBe(404)
    expect(await (await fetch(`${fnUrl}/healthz`)).json()).toEqual({status: 'ok'})
  })

  it('refuses to start without DB_URL, saying what to add', async () => {
    const bad = start({})
    let err = ''
    bad.stderr!.on('data', (d) => (err += String(d)))
    const [code] = await once(bad, 'exit')
    expect(code).toBe(2)
    expect(err).toMatch(/DB_URL is not set; add db to the dependsOn of api/)
  })

  it('finishes on SIGTERM (scaled down) with exit 0', async () => {
    fn.kill('SIGTERM')
    const [code] = await once(fn, 'exit')
    expect(code).toBe(0)
  })
})
