// compose's restart policy, as every workload driver applies it after an exit.
import type {InstanceSpec} from './supervisor.js'

/** Undefined: it restarts. Otherwise why it is left `exited` (a log line). */
export function notRestartedBecause(spec: Pick<InstanceSpec, 'restart' | 'maxRestarts'>, restarts: number, success: boolean): string | undefined {
  const {restart: policy, maxRestarts} = spec
  const spent = policy === 'on-failure' && maxRestarts !== undefined && restarts >= maxRestarts
  if (!(policy === 'no' || (policy === 'on-failure' && success) || spent)) return undefined
  return success ? 'completed; not restarted' : spent ? `not restarted: ${maxRestarts} restarts spent (restart: on-failure:${maxRestarts})` : `not restarted (restart: ${policy})`
}
