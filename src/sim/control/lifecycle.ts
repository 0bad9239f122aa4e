// Starting and stopping a whole mesh from the CLI: the daemon in the background
// (`mesh up -d`) and `mesh down`, which works even when the daemon is gone.
import {fork} from 'node:child_process'
import {closeSync, existsSync, openSync, renameSync} from 'node:fs'
import {tailLines} from './log-files.js'
import {fileURLToPath} from 'node:url'
import {MeshError} from '../errors.js'
import {killRecorded, signalGroup, signalPid} from '../supervisor/process-group.js'
import {type Clock, realClock} from '../time/clock.js'
import {daemonAlive, ControlClient} from './control-client.js'
import type {DaemonEvent} from './daemon.js'
import type {DaemonMessage} from './daemon-main.js'
import {ensureMeshDir, type MeshPaths, type MeshState, readState, readToken, removeState, stateProcessTable} from './state-file.js'
import {acquireMeshLock, liveLockOwner, lockedError} from './mesh-lock.js'
import type {MeshStatus} from './status.js'

const DAEMON_MAIN = fileURLToPath(new URL('./daemon-main.js', import.meta.url))

// How long a command waits for another's short hold on the lock (a cleanup) to end.
const COMMAND_LOCK_WAIT_MS = 15_000

/**
 * Native Windows has neither process groups nor POSIX signals, which are how the mesh
 * stops a service and everything it started; a half-working mesh would leave processes behind.
 */
export function assertSupportedPlatform(platform: NodeJS.Platform = process.platform): void {
  if (platform === 'win32') {
    throw new MeshError('MESH_UNSUPPORTED_PLATFORM', 'meshsim does not run on native Windows: it stops services through process groups and POSIX signals, which Windows does not have.', {
      hints: ['Run it in WSL 2 (Windows Subsystem for Linux), where it works as on Linux.'],
    })
  }
}

/** The error for a mesh whose daemon runs. */
function alreadyRunning(state: MeshState): MeshError {
  return lockedError({pid: state.daemon.pid, startTime: state.daemon.startTime, processTable: stateProcessTable(state).kind, role: 'daemon', name: state.name})
}

/**
 * Refuses to start twice; cleans up after a daemon that died without `mesh down`. The
 * daemon's own lock (mesh-lock.ts) is what keeps two `mesh up` from both starting: this
 * only says so early, and does its cleanup under the lock so it never races a new daemon.
 */
export async function ensureNotRunning(paths: MeshPaths): Promise<{cleaned: string[]}> {
  const seen = readState(paths)
  if (seen && daemonAlive(seen)) throw alreadyRunning(seen)
  // A daemon still starting holds the lock before it writes state.json.
  const owner = liveLockOwner(paths)
  if (owner?.role === 'daemon') throw lockedError(owner)
  if (!seen) return {cleaned: []}
  const lock = await acquireMeshLock(paths, {role: 'command', name: 'mesh up'}, COMMAND_LOCK_WAIT_MS)
  try {
    const state = readState(paths)
    if (!state) return {cleaned: []}
    if (daemonAlive(state)) throw alreadyRunning(state)
    const {killed} = await killRecorded(state.children, {graceMs: 5_000, table: stateProcessTable(state)})
    removeState(paths)
    return {cleaned: killed}
  } finally {
    lock.release()
  }
}

/** Forks the daemon, relays its progress, resolves once every instance is healthy. */
export function startDetached(
  configFile: string,
  paths: MeshPaths,
  onEvent: (event: DaemonEvent) => void,
  opts: {watch?: boolean; only?: string[]; profiles?: string[]} = {},
): Promise<MeshStatus> {
  ensureMeshDir(paths)
  if (existsSync(paths.daemonLog)) renameSync(paths.daemonLog, paths.previousDaemonLog)
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

/**
 * Stops the mesh: asks the daemon; if it is gone or hangs, kills every recorded process
 * itself (under the lock, so two `mesh down` or a `mesh up` do not clean up at once).
 */
export async function stopMesh(paths: MeshPaths, opts: {timeoutMs?: number; clock?: Clock} = {}): Promise<DownResult | undefined> {
  const clock = opts.clock ?? realClock
  const state = readState(paths) ?? (await stateOfStartingDaemon(paths, clock))
  if (!state) return undefined
  const token = readToken(paths)
  let graceful = false
  if (daemonAlive(state) && token) {
    try {
      await new ControlClient(state, token).down()
      // Its grace periods are the daemon's whole budget; past them (and a margin to exit) it hangs.
      graceful = await waitForExit(state, opts.timeoutMs ?? (state.stopGraceMs ?? 25_000) + 5_000, clock)
    } catch {
      graceful = false
    }
    // A detached daemon leads its group; a foreground `mesh up` does not.
    if (!graceful && daemonAlive(state) && !signalGroup(state.daemon.pid, 'SIGKILL')) signalPid(state.daemon.pid, 'SIGKILL')
  }
  const table = stateProcessTable(state)
  // The daemon removed its files and released the lock; a new mesh may already hold it. What is
  // checked here is only what it recorded and what still has its start time: nothing left, as a rule.
  if (graceful) return {name: state.name, graceful, killed: (await killRecorded(state.children, {graceMs: 5_000, clock, table})).killed}
  const lock = await acquireMeshLock(paths, {role: 'command', name: 'mesh down'}, COMMAND_LOCK_WAIT_MS)
  try {
    const {killed} = await killRecorded(state.children, {graceMs: 5_000, clock, table})
    // Another `mesh down` may have cleaned up meanwhile: a state file it left is not this one.
    if (readState(paths)?.daemon.pid === state.daemon.pid) removeState(paths)
    return {name: state.name, graceful, killed}
  } finally {
    lock.release()
  }
}

/** A daemon that holds the lock but has not written state.json yet (it is starting): its state once written. */
async function stateOfStartingDaemon(paths: MeshPaths, clock: Clock): Promise<MeshState | undefined> {
  const deadline = clock.now() + COMMAND_LOCK_WAIT_MS
  for (;;) {
    const owner = liveLockOwner(paths)
    if (owner?.role !== 'daemon') return readState(paths)
    const state = readState(paths)
    if (state) return state
    if (clock.now() > deadline) {
      throw new MeshError('MESH_STARTING', `mesh "${owner.name}" (daemon pid ${owner.pid}) is starting and has not opened its control API yet.`, {
        hints: ['Run `mesh down` again in a moment.'],
      })
    }
    await clock.sleep(100)
  }
}

async function waitForExit(state: MeshState, timeoutMs: number, clock: Clock): Promise<boolean> {
  const deadline = clock.now() + timeoutMs
  while (clock.now() < deadline) {
    if (!daemonAlive(state)) return true
    await clock.sleep(50)
  }
  return !daemonAlive(state)
}
