// Integration-test helpers: a mesh in a temp dir, driven through the real CLI.
import {execa} from 'execa'
import {mkdtempSync, writeFileSync, mkdirSync, cpSync} from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'
import {request} from 'undici'

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..')
export const BIN = path.join(ROOT, 'bin/run.js')
export const FIXTURES = path.join(ROOT, 'test/fixtures')

// Ports for ingresses, from below the kernel's ephemeral range (and below the mesh's
// instance ports, 10000 up): a port from listen(0) could be taken as the local port of
// some outgoing connection before the daemon binds it a second later.
let cursor = 5000 + ((process.pid * 7919) % 4000)

export async function freePort(): Promise<number> {
  for (let tries = 0; tries < 200; tries++) {
    cursor = 5000 + ((cursor - 5000 + 1) % 4999)
    const ok = await new Promise<boolean>((resolve) => {
      const server = net.createServer()
      server.once('error', () => resolve(false))
      server.listen(cursor, '127.0.0.1', () => server.close(() => resolve(true)))
    })
    if (ok) return cursor
  }
  throw new Error('no free port between 5000 and 9999')
}

/** A fresh directory holding mesh.yaml (and the echo fixture, for `command:` services). */
export function meshDir(yaml: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'meshsim-test-'))
  writeFileSync(path.join(dir, 'mesh.yaml'), yaml)
  mkdirSync(path.join(dir, 'fixtures'))
  cpSync(FIXTURES, path.join(dir, 'fixtures'), {recursive: true})
  writeFileSync(path.join(dir, 'fixtures', 'package.json'), '{"type":"module"}')
  return dir
}

export async function mesh(dir: string, args: string[], opts: {timeoutMs?: number} = {}) {
  const r = await execa('node', [BIN, ...args], {
    cwd: dir,
    reject: false,
    timeout: opts.timeoutMs ?? 60_000,
    env: {NO_COLOR: '1'},
  })
  return {exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr)}
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

/** Polls until fn() is truthy or the deadline passes; returns the last value. */
export async function eventually<T>(fn: () => Promise<T> | T, timeoutMs = 20_000, stepMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last = await fn()
  while (!last && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, stepMs))
    last = await fn()
  }
  return last
}
