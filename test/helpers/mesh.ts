// Integration-test helpers: a mesh in a temp dir, driven through the real CLI.
import {execa} from 'execa'
import {mkdtempSync, writeFileSync, mkdirSync, cpSync} from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import {inspect} from 'node:util'
import {fileURLToPath} from 'node:url'
import {Agent, request} from 'undici'
import {expect} from 'vitest'
import {freePort as freePortIn} from '../../src/sim/control/ports.js'

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
export const BIN = path.join(ROOT, 'bin/run.js')
export const FIXTURES = path.join(ROOT, 'test/fixtures')

/**
 * A port for an ingress: below the mesh's instance ports (10000 up) and below the
 * kernel's ephemeral range, where a port from listen(0) could be taken as the local
 * port of some outgoing connection before the daemon binds it a second later.
 */
export const freePort = () => freePortIn({low: 5000, high: 9999})

/** A fresh directory holding mesh.yaml (and the echo fixture, for `command:` services). */
export function meshDir(yaml: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'meshsim-test-'))
  writeFileSync(path.join(dir, 'mesh.yaml'), yaml)
  mkdirSync(path.join(dir, 'fixtures'))
  cpSync(FIXTURES, path.join(dir, 'fixtures'), {recursive: true})
  writeFileSync(path.join(dir, 'fixtures', 'package.json'), '{"type":"module"}')
  return dir
}

/**
 * A CLI run in `dir`. `mesh up` skips its warm-up unless `warmUp` is set: each warm-up is a second
 * of full-speed requests, which a suite of a hundred meshes on two cores pays in every other test's
 * timing; test/integration/warm-up.test.ts tests the warm-up itself, and the README tour runs
 * `mesh up -d` as written.
 */
export async function mesh(dir: string, args: string[], opts: {timeoutMs?: number; env?: Record<string, string>; warmUp?: boolean} = {}) {
  const argv = args[0] === 'up' && !opts.warmUp && !args.includes('--no-warm-up') ? [...args, '--no-warm-up'] : args
  const r = await execa('node', [BIN, ...argv], {
    cwd: dir,
    reject: false,
    timeout: opts.timeoutMs ?? 60_000,
    env: {NO_COLOR: '1', ...opts.env},
  })
  return {exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr)}
}

/** Writes `yamlFor(port)` to a fresh directory, the ingress on a free port; nothing started (a test that starts it its own way). */
export async function meshOnFreePort(yamlFor: (port: number) => string): Promise<{dir: string; port: number; ingress: string}> {
  const port = await freePort()
  return {dir: meshDir(yamlFor(port)), port, ingress: `http://127.0.0.1:${port}`}
}

/** Writes `yamlFor(port)` to a fresh directory (ingress on a free port) and starts it with `mesh up -d`. */
export async function upMesh(yamlFor: (port: number) => string): Promise<{dir: string; port: number; ingress: string}> {
  const written = await meshOnFreePort(yamlFor)
  const up = await mesh(written.dir, ['up', '-d'])
  expect(up.exitCode, up.stderr + up.stdout).toBe(0)
  return written
}

/** `mesh down`, failing loudly: a mesh left running would hold ports and CPU for every later test. */
export async function downMesh(dir: string): Promise<void> {
  const down = await mesh(dir, ['down'])
  expect(down.exitCode, down.stderr + down.stdout).toBe(0)
}

/** A CLI run's stdout as JSON, once the run is known to have succeeded. */
export function json<T>(r: {exitCode: number; stdout: string; stderr: string}): T {
  expect(r.exitCode, r.stderr + r.stdout).toBe(0)
  return JSON.parse(r.stdout) as T
}

export async function get(url: string, headers: Record<string, string> = {}) {
  const res = await request(url, {headers, headersTimeout: 20_000, bodyTimeout: 20_000})
  const text = await res.body.text()
  return {status: res.statusCode, headers: res.headers, text}
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/**
 * Whether something accepts connections at `host:port` (an instance's `address` in `mesh
 * status`): an instance is gone when its port refuses, whether it was a process of its own or
 * an object in a simulation host whose pid lives on.
 */
export function accepts(address: string): Promise<boolean> {
  const [host, port] = [address.slice(0, address.lastIndexOf(':')), Number(address.slice(address.lastIndexOf(':') + 1))]
  return new Promise((resolve) => {
    const socket = net.connect({host, port})
    socket.setTimeout(2000)
    socket.once('connect', () => (socket.destroy(), resolve(true)))
    socket.once('timeout', () => (socket.destroy(), resolve(false)))
    socket.once('error', () => resolve(false))
  })
}

type Truthy<T> = Exclude<T, undefined | null | false | 0 | ''>

/**
 * Polls until fn() returns a truthy value (without throwing) and returns it. On timeout it
 * throws with what it last saw, the value or the error, so an unchecked
 * `await eventually(...)` still fails the test it guards. `context`, if given, is added to
 * that message (a screen, a log: what the value alone does not show).
 */
export async function eventually<T>(fn: () => Promise<T> | T, timeoutMs = 20_000, stepMs = 100, context?: () => string): Promise<Truthy<T>> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    let seen: {value: T} | {error: unknown}
    try {
      const value = await fn()
      if (value) return value as Truthy<T>
      seen = {value}
    } catch (error) {
      seen = {error}
    }
    if (Date.now() >= deadline) {
      const last = 'error' in seen ? `it threw ${seen.error instanceof Error ? seen.error.message : inspect(seen.error)}` : `it returned ${inspect(seen.value, {depth: 4, breakLength: Infinity})}`
      const more = context ? `\n${context()}` : ''
      throw new Error(`eventually: not true within ${timeoutMs} ms; last time ${last}${more}`, 'error' in seen ? {cause: seen.error} : undefined)
    }
    await new Promise((r) => setTimeout(r, stepMs))
  }
}

export interface Sent {
  status: number
  /** `x-mesh-upstream`: the instance that answered. */
  instance?: string
  flags?: string
  retryAfter?: string
  ms: number
}

// A connection per concurrent request (a cap of 32 made autoscaling's 50 at once 32: the
// rest queued in the client, out of the mesh's sight).
const loadAgent = new Agent({connections: 64})

/** Requests in rounds of `batch` (at `concurrency`) until `stop()`, which resolves with every one sent. */
export function sendUntilStopped(url: string, batch = 40, concurrency = 4): {stop(): Promise<Sent[]>} {
  let stopped = false
  const sent: Sent[] = []
  const running = (async () => {
    while (!stopped) sent.push(...(await sendMany(url, batch, concurrency)))
  })()
  return {
    async stop() {
      stopped = true
      await running
      return sent
    },
  }
}

/** `n` GET requests to `url`, `concurrency` (at most 64) at a time; results by request index (so seeded runs compare). */
export async function sendMany(url: string, n: number, concurrency = 1): Promise<Sent[]> {
  const out: Sent[] = new Array(n)
  let next = 0
  await Promise.all(
    Array.from({length: concurrency}, async () => {
      while (next < n) {
        const i = next++
        const t0 = performance.now()
        const r = await request(url, {dispatcher: loadAgent, headersTimeout: 10_000, bodyTimeout: 10_000})
        await r.body.text()
        out[i] = {
          status: r.statusCode,
          instance: r.headers['x-mesh-upstream'] as string | undefined,
          flags: r.headers['x-mesh-response-flags'] as string | undefined,
          retryAfter: r.headers['retry-after'] as string | undefined,
          ms: performance.now() - t0,
        }
      }
    }),
  )
  return out
}
