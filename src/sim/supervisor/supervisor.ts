// The supervisor owns every service process of a mesh: it starts each one in its
// own process group, restarts it with backoff when it dies, and stops it
// gracefully. Health checks and the registry sit above it and only listen.
//
//   start ─▶ starting ─▶ running ──exit──▶ backoff | crash-loop ──timer──▶ starting …
//                           │        └─exit (restart: no; on-failure and code 0)──▶ exited
//                           └──stop()──▶ stopping ──▶ stopped   (never restarted)

import {EventEmitter} from 'node:events'
import {appendFileSync, closeSync, mkdirSync, openSync} from 'node:fs'
import {dirname} from 'node:path'
import {execa, type ResultPromise} from 'execa'
import {MeshError} from '../errors.js'
import {realClock, type Clock, type Timer} from '../time/clock.js'
import {RestartBackoff, type RestartBackoffOptions} from './backoff.js'
import {formatDuration} from '../config/duration.js'
import {killTree, outsiders, signalGroup, stopTree, type ProcessTree} from './process-group.js'
import {type ProcessRecord, type ProcessRef} from './process-identity.js'
import {processTable, type ProcessSnapshot, type ProcessTable} from './process-table.js'
import {nextRunId, type WorkloadDriver} from './workload-driver.js'
import {type RestartState, restartsAfter, scheduleRestart} from './restart-policy.js'

/**
 * How often descendants are looked for. One that leaves its group (`setsid cmd &`) and
 * then loses its parent is re-parented to init: only a record made while its parent
 * still lived links it to the instance.
 */
const DESCENDANT_SAMPLE_MS = 2000

export interface InstanceSpec {
  instance: string
  service: string
  version: string
  /** Run via a shell, so `npm start` and `PORT=1 node x.js` work as typed in mesh.yaml. */
  command: string
  cwd: string
  /** Merged over process.env. */
  env: Record<string, string>
  /** The child's stdout and stderr, and the supervisor's own `[mesh] ` lines. */
  logFile: string
  /** How long a stopped process gets between SIGTERM and SIGKILL. */
  graceMs: number
  /** compose's restart policy; absent: always. */
  restart?: 'on-failure' | 'no'
  /** `on-failure:N`: at most N restarts. */
  maxRestarts?: number
  /**
   * A `simulate:` instance a hosted driver may run inside a simulation host instead of
   * `command` (which runs it as a process of its own); it reads the same env.
   */
  simulated?: boolean
}

/** `exited`: it ended and its restart policy leaves it so (a job that finished, or failed for good). */
export type ProcessState = 'starting' | 'running' | 'backoff' | 'crash-loop' | 'exited' | 'stopping' | 'stopped'

export interface ProcessStatus {
  instance: string
  service: string
  version: string
  /** The process that runs it: for a hosted instance, its simulation host's, shared with its neighbours. */
  pid?: number
  pgid?: number
  startTime?: string
  /** This run of the instance (the last one while it waits to restart): a new one at every start or restart (nextRunId). */
  runId?: number
  /** When this run began (clock ms). */
  startedAtMs?: number
  state: ProcessState
  /** Restarts after unexpected exits (not counting the first start). */
  restarts: number
  lastExit?: {code: number | null; signal: string | null; atMs: number}
  /** Why the last start failed before the process ran (cwd missing, log file unwritable). */
  lastError?: string
  nextRestartAtMs?: number
}

export interface SupervisorOptions {
  clock?: Clock
  backoff?: RestartBackoffOptions
  /** Where identities and descendants are looked up (process-table.ts). */
  table?: ProcessTable
}

interface Entry extends RestartState {
  /** Descendants outside the group, by pid, as last seen (process-table.ts). */
  descendants: Map<number, ProcessRef>
  /** Settles when the current process's exit (or failed start) has been handled. */
  exited: Promise<void>
  stopping?: Promise<void>
}

/**
 * Events: 'spawn' (status), 'exit' (status, {code, signal}), 'records' (records() changed:
 * a start time or descendants recorded),
 * 'restart-scheduled' (status, delayMs), 'stopped' (status, 'exited' | 'killed' | 'not-running').
 * Every status handed out is a copy.
 */
export class Supervisor extends EventEmitter implements WorkloadDriver {
  private readonly clock: Clock
  private readonly backoffOptions: RestartBackoffOptions | undefined
  private readonly entries = new Map<string, Entry>()
  readonly table: ProcessTable
  private sampler?: Timer

  constructor(opts: SupervisorOptions = {}) {
    super()
    this.clock = opts.clock ?? realClock
    this.backoffOptions = opts.backoff
    this.table = opts.table ?? processTable()
  }

  /** Spawns the instance now. An instance already known and not stopped is an error. */
  start(spec: InstanceSpec): ProcessStatus {
    const existing = this.entries.get(spec.instance)
    if (existing && existing.status.state !== 'stopped') {
      throw new MeshError('MESH_INSTANCE_ALREADY_STARTED', `instance "${spec.instance}" is already ${existing.status.state}.`, {
        hints: ['Stop it first, or give the new instance another name.'],
      })
    }
    const entry: Entry = {
      spec,
      status: {instance: spec.instance, service: spec.service, version: spec.version, state: 'starting', restarts: 0},
      backoff: new RestartBackoff(this.backoffOptions),
      startedAtMs: this.clock.now(),
      wanted: true,
      descendants: new Map(),
      exited: Promise.resolve(),
    }
    this.entries.set(spec.instance, entry)
    this.spawn(entry)
    return copy(entry.status)
  }

  status(instance: string): ProcessStatus | undefined {
    const entry = this.entries.get(instance)
    return entry && copy(entry.status)
  }

  list(): ProcessStatus[] {
    return [...this.entries.values()].map((entry) => copy(entry.status))
  }

  /** Live process groups, for .mesh/state.json: what `mesh down` kills if the daemon is gone. */
  records(): ProcessRecord[] {
    const records: ProcessRecord[] = []
    for (const entry of this.entries.values()) {
      const {status} = entry
      if (status.pid === undefined || status.pgid === undefined || status.startTime === undefined) continue
      const descendants = [...entry.descendants.values()]
      records.push({instance: status.instance, pid: status.pid, pgid: status.pgid, startTime: status.startTime, ...(descendants.length ? {descendants} : {})})
    }
    return records
  }

  /**
   * Stops the instance for good: SIGTERM to its group and its descendants outside it,
   * SIGKILL after graceMs (default spec.graceMs; less when draining spent part of the budget).
   */
  async stop(instance: string, graceMs?: number): Promise<void> {
    const entry = this.entry(instance)
    entry.stopping ??= this.stopEntry(entry, graceMs ?? entry.spec.graceMs)
    return entry.stopping
  }

  async stopAll(graceMs?: number): Promise<void> {
    await Promise.all([...this.entries.keys()].map((instance) => this.stop(instance, graceMs)))
  }

  /** SIGKILL every tree at once, no grace (a second Ctrl-C). */
  killAll(): void {
    const snapshot = this.table.readSync()
    for (const entry of this.entries.values()) killTree(this.treeOf(entry, snapshot), snapshot)
  }

  /**
   * Looks for descendants outside each instance's group and records them (with their start
   * times, so state.json lets `mesh down` find them after the daemon died). Those seen before
   * are kept while they are still the same process: an orphan no longer descends from anyone.
   */
  async sampleDescendants(): Promise<void> {
    const snapshot = await this.table.read()
    let changed = false
    for (const entry of this.entries.values()) {
      const before = entry.descendants.size
      const seen = this.outsiders(entry, snapshot)
      if (seen.size !== before || [...seen.keys()].some((pid) => !entry.descendants.has(pid))) changed = true
      entry.descendants = seen
    }
    if (changed) this.emit('records')
  }

  private outsiders(entry: Entry, snapshot: ProcessSnapshot): Map<number, ProcessRef> {
    return outsiders(entry.status.pid, entry.status.pgid, entry.descendants.values(), snapshot)
  }

  private treeOf(entry: Entry, snapshot: ProcessSnapshot): ProcessTree {
    return {pgid: entry.status.pgid, others: [...this.outsiders(entry, snapshot).values()]}
  }

  private scheduleSample(): void {
    if (this.sampler) return
    this.sampler = this.clock.setTimer(DESCENDANT_SAMPLE_MS, () => {
      this.sampler = undefined
      if (![...this.entries.values()].some((e) => e.wanted && e.status.pid !== undefined)) return
      void this.sampleDescendants()
        .catch((error: Error) => console.error(`[mesh] cannot look for descendants: ${error.message}`))
        .finally(() => this.scheduleSample())
    })
  }

  /**
   * A fault and test hook: signals the group without marking it stopped, so a
   * fatal signal counts as a crash and the instance restarts with backoff.
   */
  async signal(instance: string, signal: NodeJS.Signals): Promise<void> {
    const entry = this.entry(instance)
    const {pgid} = entry.status
    if (pgid === undefined || !entry.wanted) return
    this.log(entry, `sending ${signal} to group ${pgid}`)
    signalGroup(pgid, signal)
  }

  /** Drops a stopped instance from list() and status(). */
  forget(instance: string): void {
    const entry = this.entries.get(instance)
    if (entry && entry.status.state !== 'stopped') {
      throw new MeshError('MESH_INSTANCE_NOT_STOPPED', `instance "${instance}" is ${entry.status.state}; stop it before forgetting it.`)
    }
    this.entries.delete(instance)
  }

  private entry(instance: string): Entry {
    const entry = this.entries.get(instance)
    if (!entry) {
      const known = [...this.entries.keys()]
      throw new MeshError('MESH_INSTANCE_NOT_FOUND', `instance "${instance}" is not supervised.`, {
        hints: [known.length > 0 ? `Known instances: ${known.join(', ')}` : 'No instance has been started.', 'Run `mesh status` to see instances.'],
      })
    }
    return entry
  }

  private spawn(entry: Entry): void {
    const {spec, status} = entry
    entry.startedAtMs = this.clock.now()
    status.runId = nextRunId()
    status.startedAtMs = entry.startedAtMs
    status.state = 'starting'
    status.nextRestartAtMs = undefined
    status.lastError = undefined

    let fd: number
    try {
      mkdirSync(dirname(spec.logFile), {recursive: true})
      fd = openSync(spec.logFile, 'a')
    } catch (error) {
      this.failedStart(entry, `cannot open log file ${spec.logFile}: ${(error as Error).message}`)
      return
    }

    let subprocess: ResultPromise
    try {
      subprocess = execa(spec.command, {
        shell: true,
        cwd: spec.cwd,
        env: spec.env,
        // Its own process group (pgid = pid), so one signal reaches the grandchildren.
        detached: true,
        stdin: 'ignore',
        // The log file itself, not a pipe through us: the child keeps logging if the
        // daemon dies, and never gets EPIPE.
        stdout: fd as LogFd,
        stderr: fd as LogFd,
        reject: false,
        buffer: false,
        // Children outlive a killed daemon; `mesh down` finds them in .mesh/state.json.
        cleanup: false,
      })
    } catch (error) {
      closeSync(fd)
      this.failedStart(entry, (error as Error).message)
      return
    }
    // spawn() has duplicated the descriptor into the child already.
    closeSync(fd)

    const pid = subprocess.pid
    if (pid === undefined) {
      // The spawn failed (cwd missing, no shell); execa's result says why.
      entry.exited = subprocess.then(
        (result) => this.failedStart(entry, result.shortMessage ?? 'the process did not start'),
        (error: Error) => this.failedStart(entry, error.message),
      )
      return
    }

    status.pid = pid
    status.pgid = pid
    status.startTime = undefined
    status.state = 'running'
    entry.descendants = new Map()
    this.scheduleSample()
    void this.recordStartTime(entry, pid)
    this.log(entry, `started pid ${pid}${status.restarts > 0 ? ` (restart ${status.restarts})` : ''}: ${spec.command}`)
    this.emit('spawn', copy(status))
    entry.exited = subprocess.then(
      (result) => this.onExit(entry, pid, result.exitCode ?? null, result.signal ?? null),
      () => this.onExit(entry, pid, null, null),
    )
  }

  /**
   * Its start time, once the table answers: instances spawned together (a service's replicas)
   * share one look, and under `ps` the data plane does not wait for it. Until then records()
   * leaves the instance out; its group is still stopped through the pgid the supervisor knows.
   */
  private async recordStartTime(entry: Entry, pid: number): Promise<void> {
    let snapshot: ProcessSnapshot
    try {
      snapshot = await this.table.read()
    } catch (error) {
      this.log(entry, `cannot record the start time of pid ${pid}: ${(error as Error).message}`)
      return
    }
    if (entry.status.pid !== pid) return
    entry.status.startTime = snapshot.get(pid)?.startTime
    this.emit('records')
  }

  private onExit(entry: Entry, pgid: number, code: number | null, signal: string | null): void {
    const {status} = entry
    status.lastExit = {code, signal, atMs: this.clock.now()}
    status.pid = undefined
    status.pgid = undefined
    status.startTime = undefined
    this.log(entry, `exited code ${code ?? '-'} signal ${signal ?? '-'}`)
    if (entry.wanted) {
      // The leader died but left children: they would hold its port against the restart.
      const snapshot = this.table.readSync()
      const tree = {pgid, others: [...entry.descendants.values()]}
      if (killTree(tree, snapshot)) this.log(entry, `killing what is left of group ${pgid}${tree.others.length ? ` and ${tree.others.length} process(es) that left it` : ''}`)
    }
    entry.descendants = new Map()
    const restart = restartsAfter(entry, code === 0 && signal === null, (line) => this.log(entry, line))
    this.emit('exit', copy(status), {code, signal})
    // Asked again: an 'exit' listener may have stopped it (wanted is false then).
    if (restart && entry.wanted) this.scheduleRestart(entry)
  }

  private failedStart(entry: Entry, message: string): void {
    const {status} = entry
    status.lastError = message
    status.lastExit = {code: null, signal: null, atMs: this.clock.now()}
    this.log(entry, `failed to start: ${message}`)
    const restart = restartsAfter(entry, false, (line) => this.log(entry, line))
    this.emit('exit', copy(status), {code: null, signal: null})
    if (restart && entry.wanted) this.scheduleRestart(entry)
  }

  private scheduleRestart(entry: Entry): void {
    const delayMs = scheduleRestart(entry, this.clock, (line) => this.log(entry, line), () => this.spawn(entry))
    this.emit('restart-scheduled', copy(entry.status), delayMs)
  }

  private async stopEntry(entry: Entry, graceMs: number): Promise<void> {
    const {status} = entry
    entry.wanted = false
    if (![...this.entries.values()].some((e) => e.wanted)) {
      this.sampler?.cancel()
      this.sampler = undefined
    }
    entry.restartTimer?.cancel()
    entry.restartTimer = undefined
    status.nextRestartAtMs = undefined
    const pgid = status.pgid
    let outcome: 'exited' | 'killed' | 'not-running' = 'not-running'
    if (pgid !== undefined) {
      status.state = 'stopping'
      // Looked for once more right before the signal: one started since the last sample counts too.
      const tree = this.treeOf(entry, await this.table.read())
      const outside = tree.others.length ? ` and ${tree.others.map((r) => r.pid).join(', ')} (left the group)` : ''
      this.log(entry, `stopping: SIGTERM to group ${pgid}${outside}, SIGKILL after ${formatDuration(graceMs)}`)
      outcome = await stopTree(tree, {graceMs, clock: this.clock, table: this.table})
      if (outcome === 'killed') this.log(entry, `still running after ${formatDuration(graceMs)}: sent SIGKILL to group ${pgid}${outside}`)
    }
    entry.descendants = new Map()
    await entry.exited
    status.state = 'stopped'
    this.log(entry, 'stopped')
    this.emit('stopped', copy(status), outcome)
  }

  private log(entry: Entry, line: string): void {
    try {
      // Every line prefixed, so `mesh logs` can tell ours from the child's (execa's errors span lines).
      appendFileSync(entry.spec.logFile, line.split('\n').map((part) => `[mesh] ${part}\n`).join(''))
    } catch {
      // The log is for the developer; an unwritable one must not take the supervisor down.
    }
  }
}

// execa accepts any descriptor at runtime, but its types reject a plain `number`.
type LogFd = 3

function copy(status: ProcessStatus): ProcessStatus {
  return {...status, lastExit: status.lastExit && {...status.lastExit}}
}

