// `.mesh/` beside mesh.yaml: the daemon's state.json (so `mesh down` can always
// clean up, even after the daemon was SIGKILLed), the control token, and logs.
import {chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync} from 'node:fs'
import {randomBytes} from 'node:crypto'
import path from 'node:path'
import type {ProcessRecord} from '../supervisor/process-identity.js'

export interface MeshPaths {
  root: string
  state: string
  token: string
  logs: string
  access: string
  history: string
  daemonLog: string
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
  mkdirSync(paths.root, {recursive: true})
  const tmp = `${paths.state}.${process.pid}.tmp`
  writeFileSync(tmp, JSON.stringify(state, null, 2))
  renameSync(tmp, paths.state)
}

export function removeState(paths: MeshPaths): void {
  rmSync(paths.state, {force: true})
  rmSync(paths.token, {force: true})
}

/** A fresh bearer token, readable only by this user. */
export function createToken(paths: MeshPaths): string {
  mkdirSync(paths.root, {recursive: true})
  const token = randomBytes(24).toString('hex')
  rmSync(paths.token, {force: true})
  writeFileSync(paths.token, token, {mode: 0o600})
  chmodSync(paths.token, 0o600)
  return token
}

export function readToken(paths: MeshPaths): string | undefined {
  return existsSync(paths.token) ? readFileSync(paths.token, 'utf8').trim() : undefined
}
