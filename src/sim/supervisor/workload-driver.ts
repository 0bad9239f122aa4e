// What runs an instance's workload. The process supervisor is the first driver; hosted
// simulated instances and the virtual-time engine will be others. The instance manager
// (control/instance-manager.ts) starts, signals and stops workloads only through this,
// and learns of exits and scheduled restarts from its events.
import type {InstanceSpec, ProcessStatus} from './supervisor.js'

let lastRunId = 0

/**
 * The id of a new run of some workload, unique among the daemon's runs whatever driver runs
 * it: what tells a restarted or replaced instance from the one before, where a pid cannot (a
 * simulation host's pid is shared by its instances and outlives their restarts).
 */
export function nextRunId(): number {
  return ++lastRunId
}

export interface WorkloadDriver {
  /** Runs the workload now; it restarts after exits as the spec's restart policy says. */
  start(spec: InstanceSpec): ProcessStatus
  /** Stops it for good: a graceful stop, forced once graceMs has passed. */
  stop(instance: string, graceMs?: number): Promise<void>
  /** Sends a signal without stopping it for good (faults: SIGKILL is a crash, SIGSTOP/SIGCONT a pause). */
  signal(instance: string, signal: NodeJS.Signals): Promise<void>
  /** Undefined for an instance the driver does not run (an `address:` one, or forgotten). */
  status(instance: string): ProcessStatus | undefined
  /** Drops a stopped workload from status(). */
  forget(instance: string): void
  on(event: 'exit', listener: (status: ProcessStatus, exit: {code: number | null; signal: string | null}) => void): this
  on(event: 'restart-scheduled', listener: (status: ProcessStatus, delayMs: number) => void): this
  off(event: 'exit', listener: (status: ProcessStatus, exit: {code: number | null; signal: string | null}) => void): this
  off(event: 'restart-scheduled', listener: (status: ProcessStatus, delayMs: number) => void): this
}
