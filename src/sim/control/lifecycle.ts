// Starting and stopping a whole mesh from the CLI: the daemon in the background
// (`mesh up -d`) and `mesh down`, which works even when the daemon is gone.
import {fork} from 'node:child_process'
import {closeSync, mkdirSync, openSync} from 'node:fs'
import {tailLines} from './log-files.js'
import {fileURLToPath} from 'node:url'
import {MeshError} from '../errors.js'
import {killRecorded, signalGroup} from '../supervisor/process-group.js'
import {type Clock, realClock} from '../time/clock.js'
import {daemonAlive, ControlClient} from './control-client.js'
import type {DaemonEvent} from './daemon.js'
import type {DaemonMessage} from './daemon-main.js'
import {type MeshPaths, type MeshState, readState, readToken, removeState} from './state-file.js'
import type {MeshStatus} from './status.js'

const DAEMON_MAIN = fileURLToPath(new URL('./daemon-main.js', import.meta.url))

/** Refuses to start twice; cleans up after a daemon that died without `mesh down`. */
export async function ensureNotRunning(paths: MeshPaths): Promise<{cleaned: string[]}> {
  const state = readState(paths)
  if (!state) return {cleaned: []}
  if (daemonAlive(state)) {
    throw new MeshError('MESH_ALREADY_RUNNING', `mesh "${state.name}" is already running (daemon pid ${state.daemon.pid}).`, {
      hints: ['See it with `mesh status`; stop it with `mesh down`.'],
    })
  }
  const {killed} = await killRecorded(state.children, {graceMs: 5_000})
  removeState(paths)
  return {cleaned: killed}
}

/** Forks the daemon, relays its progress, resolves once every instance is healthy. */
export function startDetached(
  configFile: string,
  paths: MeshPaths,
  onEvent: (event: DaemonEvent) => void,
  opts: {watch?: boolean; only?: string[]; profiles?: string[]} = {},
): Promise<MeshStatus> {
  mkdirSync(paths.root, {recursive: true})
  const log = openSync(paths.daemonLog, 'a')
  const args = [configFile, ...(opts.watch ? ['--watch'] : []), ...(opts.only?.length ? [`--only=${opts.only.join(',')}`] : []), ...(opts.profiles?.length ? [`--profiles=${opts.profiles.join(',')}`] : [])]
  const child = fork(DAEMON_MAIN, args, {detached: true, stdio: ['ignore', log, log, 'ipc']})
  closeSync(log)
  return new Promise((resolve, reject) => {
    let settled = false
    child.on('message', (message: DaemonMessage) => {
      if (message.type === 'event') onEvent(message.event)
      else if (message.type === 'ready') {
        settled = true
        child.unref()
        child.channel?.unref()
        resolve(message.status)
      } else if (message.type === 'failed') {
        settled = true
        reject(new MeshError(message.error.code, message.error.message, {hints: message.error.hints}))
      }
    })
    child.on('exit', (code, signal) => {
      if (settled) return
      settled = true
      reject(
        new MeshError('MESH_DAEMON_DIED', `the mesh daemon exited while starting (${signal ?? `code ${code}`}).`, {
          hints: ['Its log:', ...tailLines(paths.daemonLog, 15).map((l) => `  ${l}`)],
        }),
      )
    })
  })
}

export interface DownResult {
  name?: string
  /** The daemon answered and stopped everything itself. */
  graceful: boolean
  /** Process groups `mesh down` had to kill itself (daemon gone or too slow). */
  killed: string[]
}

/** Stops the mesh: asks the daemon; if it is gone or hangs, kills every recorded group itself. */
export async function stopMesh(paths: MeshPaths, opts: {timeoutMs?: number; clock?: Clock} = {}): Promise<DownResult | undefined> {
  const clock = opts.clock ?? realClock
  const state = readState(paths)
  if (!state) return undefined
  const token = readToken(paths)
  let graceful = false
  if (daemonAlive(state) && token) {
    try {
      await new ControlClient(state, token).down()
      graceful = await waitForExit(state, opts.timeoutMs ?? 30_000, clock)
    } catch {
      graceful = false
    }
    if (!graceful && daemonAlive(state)) signalGroup(state.daemon.pid, 'SIGKILL')
  }
  const {killed} = await killRecorded(state.children, {graceMs: 5_000, clock})
  removeState(paths)
  return {name: state.name, graceful, killed}
}

async function waitForExit(state: MeshState, timeoutMs: number, clock: Clock): Promise<boolean> {
  const deadline = clock.now() + timeoutMs
  while (clock.now() < deadline) {
    if (!daemonAlive(state)) return true
    await clock.sleep(50)
  }
  return !daemonAlive(state)
}
