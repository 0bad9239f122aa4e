// Runs `simulate:` instances as objects inside a few shared simulation host processes
// (model/simulation-host-main.ts) instead of one Node process each: a simulated instance
// then costs about what its socket costs. Each instance keeps its own port, log file and
// env wiring, and the process semantics the mesh relies on are kept at its boundary:
//
//   start ─▶ running ──exit (killed, stopped, cannot listen, host died)──▶ backoff | crash-loop ──▶ running …
//                └──stop()──▶ stopping ──▶ stopped
//
// SIGKILL resets the instance's sockets and reports an exit (restarted with the same backoff
// as a process); SIGSTOP/SIGCONT freeze and thaw it alone; a host process dying is every
// instance it hosted crashing. Hosts are recorded (records()) so `mesh down` kills one a
// SIGKILLed daemon left behind; a host also exits when the daemon's IPC channel closes.

import {type ChildProcess, fork} from 'node:child_process'
import {EventEmitter} from 'node:events'
import {appendFileSync, closeSync, mkdirSync, openSync} from 'node:fs'
import {availableParallelism} from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'
import type {MeshConfig} from '../config/types.js'
import {MeshError} from '../errors.js'
import {formatDuration} from '../config/duration.js'
import {realClock, type Clock} from '../time/clock.js'
import {RestartBackoff, type RestartBackoffOptions} from './backoff.js'
import type {HostCommand, HostReport} from './host-protocol.js'
import {signalGroup} from './process-group.js'
import type {ProcessRecord} from './process-identity.js'
import {processTable, type ProcessTable} from './process-table.js'
import {type RestartState, restartsAfter, scheduleRestart} from './restart-policy.js'
import type {InstanceSpec, ProcessStatus} from './supervisor.js'
import {nextRunId, type WorkloadDriver} from './workload-driver.js'

const HOST_MAIN = fileURLToPath(new URL('../model/simulation-host-main.js', import.meta.url))

export interface HostedDriverOptions {
  /** How many host processes share the instances (default 1). */
  hosts?: number
  /** Where each host's own log (`_simulation-host-N.log`) goes. */
  logDir: string
  clock?: Clock
  backoff?: RestartBackoffOptions
  table?: ProcessTable
  /** The host entry point (tests run against dist/). */
  hostMain?: string
}

interface Host {
  slot: number
  child: ChildProcess
  pid: number
  startTime?: string
  /** Instances it runs now. */
  instances: Set<string>
  alive: boolean
}

interface Entry extends RestartState {
  host?: Host
  /** Resolves when the current run has ended (its exit handled). */
  ended: Promise<void>
  endRun?: () => void
  stopping?: Promise<void>
}

/** Events as the Supervisor's: 'spawn', 'exit', 'records', 'restart-scheduled', 'stopped'. */
export class HostedDriver extends EventEmitter implements WorkloadDriver {
  private readonly clock: Clock
  private readonly entries = new Map<string, Entry>()
  private readonly hosts: Array<Host | undefined>
  readonly table: ProcessTable

  constructor(private readonly o: HostedDriverOptions) {
    super()
    this.clock = o.clock ?? realClock
    this.table = o.table ?? processTable()
    this.hosts = new Array<Host | undefined>(Math.max(1, o.hosts ?? 1)).fill(undefined)
  }

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
      backoff: new RestartBackoff(this.o.backoff),
      startedAtMs: this.clock.now(),
      wanted: true,
      ended: Promise.resolve(),
    }
    this.entries.set(spec.instance, entry)
    this.run(entry)
    return copy(entry.status)
  }

  status(instance: string): ProcessStatus | undefined {
    const entry = this.entries.get(instance)
    return entry && copy(entry.status)
  }

  /** The host processes, for .mesh/state.json: what `mesh down` kills if the daemon is gone. */
  records(): ProcessRecord[] {
    return this.hosts.flatMap((h) => (h?.alive && h.startTime ? [{instance: hostName(h.slot), pid: h.pid, pgid: h.pid, startTime: h.startTime}] : []))
  }

  async stop(instance: string, graceMs?: number): Promise<void> {
    const entry = this.entry(instance)
    entry.stopping ??= this.stopEntry(entry, graceMs ?? entry.spec.graceMs)
    return entry.stopping
  }

  /** Every instance stopped, then the hosts ended. */
  async stopAll(graceMs?: number): Promise<void> {
    await Promise.all([...this.entries.keys()].map((instance) => this.stop(instance, graceMs)))
    await Promise.all(this.hosts.map((h) => h && this.endHost(h)))
  }

  /** SIGKILL every host at once, no grace (a second Ctrl-C). */
  killAll(): void {
    for (const h of this.hosts) if (h?.alive) signalGroup(h.pid, 'SIGKILL')
  }

  /**
   * What a signal to the instance's process would do, done to the instance alone: SIGKILL a
   * crash, SIGSTOP/SIGCONT a pause, SIGTERM/SIGINT a graceful exit (then restarted, as its
   * own process exiting 0 would be). Any other fatal signal ends it like SIGKILL.
   */
  async signal(instance: string, signal: NodeJS.Signals): Promise<void> {
    const entry = this.entry(instance)
    const host = entry.host
    if (!host || !entry.wanted || entry.status.state !== 'running') return
    this.log(entry, `sending ${signal} to the instance (simulation host pid ${host.pid})`)
    if (signal === 'SIGSTOP' || signal === 'SIGTSTP') this.send(host, {op: 'pause', instance})
    else if (signal === 'SIGCONT') this.send(host, {op: 'resume', instance})
    else if (signal === 'SIGTERM' || signal === 'SIGINT') this.send(host, {op: 'stop', instance, graceMs: entry.spec.graceMs})
    else this.send(host, {op: 'kill', instance})
  }

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
      throw new MeshError('MESH_INSTANCE_NOT_FOUND', `instance "${instance}" is not run by a simulation host.`, {hints: ['Run `mesh status` to see instances.']})
    }
    return entry
  }

  /** Starts one run of the instance in the least loaded host, starting that host if it is not running. */
  private run(entry: Entry): void {
    const {spec, status} = entry
    entry.startedAtMs = this.clock.now()
    status.runId = nextRunId()
    status.startedAtMs = entry.startedAtMs
    status.nextRestartAtMs = undefined
    status.lastError = undefined
    let host: Host
    try {
      mkdirSync(path.dirname(spec.logFile), {recursive: true})
      host = this.pickHost(spec.service)
    } catch (error) {
      return this.onExit(entry, null, null, (error as Error).message)
    }
    entry.host = host
    host.instances.add(spec.instance)
    entry.ended = new Promise((resolve) => (entry.endRun = resolve))
    status.pid = host.pid
    status.pgid = host.pid
    status.startTime = host.startTime
    status.state = 'running'
    this.log(entry, `started in simulation host ${host.slot} (pid ${host.pid})${status.restarts > 0 ? ` (restart ${status.restarts})` : ''}`)
    this.send(host, {op: 'start', instance: spec.instance, env: spec.env, logFile: spec.logFile})
    this.emit('spawn', copy(status))
  }

  /**
   * The least loaded host that holds no other instance of the service, so that a host crash
   * does not take every replica of one; the least loaded of all when each holds one. A running
   * host wins a tie with an empty slot, which would start a process.
   */
  private pickHost(service: string): Host {
    const rank = (slot: number): [number, number, number] => {
      const host = this.hosts[slot]
      const holdsService = [...(host?.instances ?? [])].some((name) => this.entries.get(name)?.spec.service === service)
      return [holdsService ? 1 : 0, host?.instances.size ?? 0, host ? 0 : 1]
    }
    let best = 0
    let bestRank = rank(0)
    for (let slot = 1; slot < this.hosts.length; slot++) {
      const r = rank(slot)
      const i = r.findIndex((value, k) => value !== bestRank[k])
      if (i >= 0 && r[i] < bestRank[i]) [best, bestRank] = [slot, r]
    }
    const host = this.hosts[best]
    return host?.alive ? host : this.spawnHost(best)
  }

  private spawnHost(slot: number): Host {
    const logFile = path.join(this.o.logDir, `${hostName(slot)}.log`)
    mkdirSync(this.o.logDir, {recursive: true})
    const fd = openSync(logFile, 'a')
    let child: ChildProcess
    try {
      child = fork(this.o.hostMain ?? HOST_MAIN, [], {
        // Its own process group, as a supervised process: `mesh down` signals the group.
        detached: true,
        stdio: ['ignore', fd, fd, 'ipc'],
        // The daemon's flags (heap tuning, inspectors) are not the host's.
        execArgv: [],
        serialization: 'json',
      })
    } finally {
      closeSync(fd)
    }
    if (child.pid === undefined) throw new Error(`cannot start simulation host ${slot}: no pid`)
    const host: Host = {slot, child, pid: child.pid, instances: new Set(), alive: true}
    this.hosts[slot] = host
    child.on('message', (message: HostReport) => this.onReport(host, message))
    child.on('exit', (code, signal) => this.onHostExit(host, code, signal))
    // A failed send to a host that is going away: its 'exit' reports its instances; an unheard 'error' would end the daemon.
    child.on('error', (error) => console.error(`[mesh] simulation host ${slot} (pid ${host.pid}): ${error.message}`))
    // The channel must not keep the daemon alive by itself.
    child.unref()
    child.channel?.unref()
    void this.recordStartTime(host)
    return host
  }

  private async recordStartTime(host: Host): Promise<void> {
    try {
      const snapshot = await this.table.read()
      host.startTime = snapshot.get(host.pid)?.startTime
    } catch (error) {
      console.error(`[mesh] cannot record the start time of simulation host pid ${host.pid}: ${(error as Error).message}`)
      return
    }
    if (!host.alive) return
    for (const name of host.instances) {
      const entry = this.entries.get(name)
      if (entry?.host === host) entry.status.startTime = host.startTime
    }
    this.emit('records')
  }

  private onReport(host: Host, message: HostReport): void {
    const entry = this.entries.get(message.instance)
    if (!entry || entry.host !== host) return
    this.onExit(entry, message.code, message.signal)
  }

  /** Every instance it ran crashed with it. */
  private onHostExit(host: Host, code: number | null, signal: string | null): void {
    host.alive = false
    if (this.hosts[host.slot] === host) this.hosts[host.slot] = undefined
    for (const name of [...host.instances]) {
      const entry = this.entries.get(name)
      if (!entry || entry.host !== host) continue
      this.log(entry, `simulation host pid ${host.pid} exited (code ${code ?? '-'} signal ${signal ?? '-'})`)
      this.onExit(entry, code, signal ?? (code === 0 ? null : 'SIGKILL'))
    }
  }

  private onExit(entry: Entry, code: number | null, signal: string | null, startError?: string): void {
    const {status} = entry
    entry.host?.instances.delete(entry.spec.instance)
    entry.host = undefined
    status.lastExit = {code, signal, atMs: this.clock.now()}
    status.pid = undefined
    status.pgid = undefined
    status.startTime = undefined
    if (startError) status.lastError = startError
    this.log(entry, startError ? `failed to start: ${startError}` : `exited code ${code ?? '-'} signal ${signal ?? '-'}`)
    const restart = restartsAfter(entry, code === 0 && signal === null, (line) => this.log(entry, line))
    if (!entry.wanted) status.state = 'stopping'
    entry.endRun?.()
    entry.endRun = undefined
    this.emit('exit', copy(status), {code, signal})
    // Asked again: an 'exit' listener may have stopped it.
    if (restart && entry.wanted) this.scheduleRestart(entry)
  }

  private scheduleRestart(entry: Entry): void {
    const delayMs = scheduleRestart(entry, this.clock, (line) => this.log(entry, line), () => this.run(entry))
    this.emit('restart-scheduled', copy(entry.status), delayMs)
  }

  private async stopEntry(entry: Entry, graceMs: number): Promise<void> {
    const {status} = entry
    entry.wanted = false
    entry.restartTimer?.cancel()
    entry.restartTimer = undefined
    status.nextRestartAtMs = undefined
    let outcome: 'exited' | 'killed' | 'not-running' = 'not-running'
    const host = entry.host
    if (host) {
      status.state = 'stopping'
      this.log(entry, `stopping: in-flight requests get ${formatDuration(graceMs)}, then it is killed`)
      this.send(host, {op: 'stop', instance: entry.spec.instance, graceMs})
      await entry.ended
      outcome = status.lastExit?.signal === 'SIGKILL' ? 'killed' : 'exited'
    }
    status.state = 'stopped'
    this.log(entry, 'stopped')
    this.emit('stopped', copy(status), outcome)
  }

  private async endHost(host: Host): Promise<void> {
    if (!host.alive) return
    const exited = new Promise<void>((resolve) => host.child.once('exit', () => resolve()))
    signalGroup(host.pid, 'SIGTERM')
    const force = this.clock.setTimer(2000, () => signalGroup(host.pid, 'SIGKILL'))
    await exited
    force.cancel()
  }

  private send(host: Host, command: HostCommand): void {
    // A host that just died has its exit on the way: every instance in it is reported then.
    if (host.alive && host.child.connected) host.child.send(command)
  }

  private log(entry: Entry, line: string): void {
    try {
      appendFileSync(entry.spec.logFile, `[mesh] ${line}\n`)
    } catch {
      // The log is for the developer; an unwritable one must not take the driver down.
    }
  }
}

/**
 * A host's name in state.json and its log file's: the `_` keeps it apart from every instance name
 * (a service name starts with a letter), so `mesh logs simulation` never takes it for an instance of `simulation`.
 */
function hostName(slot: number): string {
  return `_simulation-host-${slot}`
}

function copy(status: ProcessStatus): ProcessStatus {
  return {...status, lastExit: status.lastExit && {...status.lastExit}}
}

/**
 * Overrides mesh.yaml's `simulation.hosts` for one `mesh up` (tests and benchmarks compare the
 * modes on one mesh.yaml): a number of hosts, 0 for a process per simulated instance.
 */
export const SIMULATION_HOSTS_ENV = 'MESH_SIMULATION_HOSTS'

/**
 * How many simulation hosts run the mesh's simulated instances (0: none, a process each):
 * $MESH_SIMULATION_HOSTS if set, else `simulation.hosts`, `auto` (the default) being one per
 * core. A host starts with the first instance placed in it, so there are never more hosts than
 * simulated instances.
 */
export function simulationHosts(simulation: MeshConfig['simulation'], env: NodeJS.ProcessEnv): number {
  const raw = env[SIMULATION_HOSTS_ENV]?.trim()
  if (raw) {
    const hosts = Number(raw)
    if (!Number.isInteger(hosts) || hosts < 0) {
      throw new MeshError('MESH_BAD_ENV', `${SIMULATION_HOSTS_ENV} must be a number of simulation hosts (0: a process per simulated instance), got ${JSON.stringify(raw)}.`, {
        hints: [`Unset it to use simulation.hosts from mesh.yaml (default auto: one per core).`],
      })
    }
    return hosts
  }
  const hosts = simulation?.hosts ?? 'auto'
  return hosts === 'auto' ? availableParallelism() : hosts
}
