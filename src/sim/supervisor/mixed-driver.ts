// The workload driver of a mesh whose simulated instances share simulation hosts: each
// `simulate:` instance goes to the hosted driver, every other (a `command:`) to the process
// supervisor; after that, each instance is signalled and stopped by the driver that runs it.
import {EventEmitter} from 'node:events'
import type {Clock} from '../time/clock.js'
import type {RestartBackoffOptions} from './backoff.js'
import {HostedDriver} from './hosted-driver.js'
import type {ProcessRecord} from './process-identity.js'
import {type InstanceSpec, type ProcessStatus, Supervisor} from './supervisor.js'
import type {WorkloadDriver} from './workload-driver.js'

const EVENTS = ['spawn', 'exit', 'records', 'restart-scheduled', 'stopped'] as const

export class MixedDriver extends EventEmitter implements WorkloadDriver {
  private readonly hostedNames = new Set<string>()

  constructor(
    readonly processes: Supervisor,
    readonly hosted: HostedDriver,
  ) {
    super()
    for (const event of EVENTS) {
      processes.on(event, (...args: unknown[]) => this.emit(event, ...args))
      hosted.on(event, (...args: unknown[]) => this.emit(event, ...args))
    }
  }

  get table(): Supervisor['table'] {
    return this.processes.table
  }

  start(spec: InstanceSpec): ProcessStatus {
    if (!spec.simulated) return this.processes.start(spec)
    this.hostedNames.add(spec.instance)
    return this.hosted.start(spec)
  }

  stop(instance: string, graceMs?: number): Promise<void> {
    return this.of(instance).stop(instance, graceMs)
  }

  signal(instance: string, signal: NodeJS.Signals): Promise<void> {
    return this.of(instance).signal(instance, signal)
  }

  status(instance: string): ProcessStatus | undefined {
    return this.of(instance).status(instance)
  }

  forget(instance: string): void {
    this.of(instance).forget(instance)
    this.hostedNames.delete(instance)
  }

  records(): ProcessRecord[] {
    return [...this.processes.records(), ...this.hosted.records()]
  }

  async stopAll(graceMs?: number): Promise<void> {
    await Promise.all([this.processes.stopAll(graceMs), this.hosted.stopAll(graceMs)])
  }

  killAll(): void {
    this.processes.killAll()
    this.hosted.killAll()
  }

  private of(instance: string): WorkloadDriver {
    return this.hostedNames.has(instance) ? this.hosted : this.processes
  }
}

/** What runs a mesh's workloads: the process supervisor, beside `hosts` simulation hosts when simulated instances share them (hosts > 0). */
export function workloadDriver(o: {hosts: number; logDir: string; clock: Clock; backoff?: RestartBackoffOptions}): Supervisor | MixedDriver {
  const supervisor = new Supervisor({clock: o.clock, backoff: o.backoff})
  return o.hosts > 0 ? new MixedDriver(supervisor, new HostedDriver({hosts: o.hosts, logDir: o.logDir, clock: o.clock, backoff: o.backoff})) : supervisor
}
