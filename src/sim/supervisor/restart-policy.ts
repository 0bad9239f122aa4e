// compose's restart policy and the backoff between runs, as every workload driver applies
// them after an exit: the Supervisor (a process per instance) and the HostedDriver (an
// instance in a simulation host) keep the same bookkeeping per instance and share it here.
import {formatDuration} from '../config/duration.js'
import type {Clock, Timer} from '../time/clock.js'
import type {RestartBackoff} from './backoff.js'
import type {InstanceSpec, ProcessStatus} from './supervisor.js'

/** Undefined: it restarts. Otherwise why it is left `exited` (a log line). */
export function notRestartedBecause(spec: Pick<InstanceSpec, 'restart' | 'maxRestarts'>, restarts: number, success: boolean): string | undefined {
  const {restart: policy, maxRestarts} = spec
  const spent = policy === 'on-failure' && maxRestarts !== undefined && restarts >= maxRestarts
  if (!(policy === 'no' || (policy === 'on-failure' && success) || spent)) return undefined
  return success ? 'completed; not restarted' : spent ? `not restarted: ${maxRestarts} restarts spent (restart: on-failure:${maxRestarts})` : `not restarted (restart: ${policy})`
}

/** What a driver keeps per instance for its restarts. */
export interface RestartState {
  spec: InstanceSpec
  status: ProcessStatus
  backoff: RestartBackoff
  /** When the current run began: a run that lasted resets the backoff. */
  startedAtMs: number
  /** False once stop() is called: from then on an exit is final. */
  wanted: boolean
  restartTimer?: Timer
}

/** After an exit of a wanted instance: whether its restart policy restarts it; if not, it is left `exited` and why is logged. */
export function restartsAfter(entry: RestartState, success: boolean, log: (line: string) => void): boolean {
  if (!entry.wanted) return false
  const why = notRestartedBecause(entry.spec, entry.status.restarts, success)
  if (why === undefined) return true
  entry.status.state = 'exited'
  log(why)
  return false
}

/**
 * Runs it again after its backoff (`backoff`, or `crash-loop` after crashes in a row, until
 * then), unless it is stopped meanwhile. Returns the delay.
 */
export function scheduleRestart(entry: RestartState, clock: Clock, log: (line: string) => void, run: () => void): number {
  const {status, backoff} = entry
  const now = clock.now()
  const delayMs = backoff.onExit(now, entry.startedAtMs)
  status.nextRestartAtMs = now + delayMs
  status.state = backoff.crashLoop ? 'crash-loop' : 'backoff'
  if (backoff.crashLoop) log(`crash loop: ${backoff.crashes} crashes in a row`)
  log(`restarting in ${formatDuration(delayMs)} (restart ${status.restarts + 1})`)
  entry.restartTimer = clock.setTimer(delayMs, () => {
    entry.restartTimer = undefined
    if (!entry.wanted) return
    status.restarts++
    run()
  })
  return delayMs
}
