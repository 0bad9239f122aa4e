// `.mesh/` beside mesh.yaml: the daemon's state.json (so `mesh down` can always
// clean up, even after the daemon was SIGKILLed), the control token, the lock, and logs.
// The directory is the user's alone (0700): logs and state say what the services do.
import {chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync} from 'node:fs'
import {randomBytes} from 'node:crypto'
import path from 'node:path'
import type {ProcessRecord} from '../supervisor/process-identity.js'
import {processTable, type ProcessTable, type ProcessTableKind} from '../supervisor/process-table.js'

export interface MeshPaths {
  root: string
  state: string
  token: string
  logs: string
  access: string
  history: string
  daemonLog: string
  /** The run before's daemon.log: each `mesh up` starts a new one, so the file never grows run after run. */
  previousDaemonLog: string
  lock: string
  /** The mesh CA (mesh-ca.ts): kept across runs, so a `curl --cacert` keeps verifying. */
  ca: string
  /** Each service's workload certificate, key and CA bundle (workload-files.ts); removed at `mesh down`. */
  certs: string
}

export function meshPaths(meshDir: string): MeshPaths {
  const root = path.join(meshDir, '.mesh')
  return {
    root,
    state: path.join(root, 'state.json'),
    token: path.join(root, 'token'),
    logs: path.join(root, 'logs'),
    access: path.join(root, 'access'),
    history: path.join(root, 'history.json'),
    daemonLog: path.join(root, 'daemon.log'),
    previousDaemonLog: path.join(root, 'daemon.previous.log'),
    lock: path.join(root, 'mesh.lock'),
    ca: path.join(root, 'ca'),
    certs: path.join(root, 'certs'),
  }
}

export interface ChildRecord extends ProcessRecord {
  service: string
}

export interface MeshState {
  version: 1
  name: string
  configFile: string
  daemon: {pid: number; startTime: string}
  /** The process table every startTime here was read from; absent in older files: proc. */
  processTable?: ProcessTableKind
  /** The longest stopGracePeriod: how long `mesh down` waits for the daemon before it kills. */
  stopGraceMs?: number
  controlUrl: string
  tokenFile: string
  ingressUrl?: string
  startedAt: string
  children: ChildRecord[]
}

export function readState(paths: MeshPaths): MeshState | undefined {
  try {
    return JSON.parse(readFileSync(paths.state, 'utf8')) as MeshState
  } catch {
    return undefined
  }
}

/** Atomic: a reader never sees half a file, even if the daemon dies mid-write. */
export function writeState(paths: MeshPaths, state: MeshState): void {
  ensureMeshDir(paths)
  const tmp = `${paths.state}.${process.pid}.tmp`
  writeFileSync(tmp, JSON.stringify(state, null, 2))
  renameSync(tmp, paths.state)
}

export function removeState(paths: MeshPaths): void {
  rmSync(paths.state, {force: true})
  // A daemon killed between writing and renaming leaves its temp file (writeState).
  const dir = path.dirname(paths.state)
  const prefix = `${path.basename(paths.state)}.`
  for (const name of existsSync(dir) ? readdirSync(dir) : []) {
    if (name.startsWith(prefix) && /^\d+\.tmp$/.test(name.slice(prefix.length))) rmSync(path.join(dir, name), {force: true})
  }
  rmSync(paths.token, {force: true})
  // The run's private keys go with it, however it ended (the CA stays: users trust it).
  rmSync(paths.certs, {recursive: true, force: true})
}

/** A fresh bearer token, readable only by this user. */
export function createToken(paths: MeshPaths): string {
  ensureMeshDir(paths)
  const token = randomBytes(24).toString('hex')
  rmSync(paths.token, {force: true})
  writeFileSync(paths.token, token, {mode: 0o600})
  chmodSync(paths.token, 0o600)
  return token
}

export function readToken(paths: MeshPaths): string | undefined {
  return existsSync(paths.token) ? readFileSync(paths.token, 'utf8').trim() : undefined
}

/** `.mesh/` exists and only its owner can enter it (one made by an older version is closed too). */
export function ensureMeshDir(paths: MeshPaths): void {
  mkdirSync(paths.root, {recursive: true, mode: 0o700})
  chmodSync(paths.root, 0o700)
}

/** The table the state's start times were read from: only that one can check them. */
export function stateProcessTable(state: MeshState): ProcessTable {
  return processTable(state.processTable ?? 'proc')
}
