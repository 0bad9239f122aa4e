// Which process a PID names. PIDs are reused, so a record of a process we started
// carries its start time as the process table tells it (process-table.ts): `mesh down`
// after a SIGKILLed daemon signals a process only if it is still the one recorded.

import type {ProcessSnapshot} from './process-table.js'

/** A process as recorded: its pid and its start time, which together survive pid reuse. */
export interface ProcessRef {
  pid: number
  startTime: string
}

export interface ProcessRecord extends ProcessRef {
  instance: string
  pgid: number
  /**
   * Descendants that left the instance's process group (`setsid cmd &`): a signal to the
   * group misses them, and once their parent exits only this record still links them to
   * the instance.
   */
  descendants?: ProcessRef[]
}

/** The recorded process still runs (a zombie has exited) and is the one recorded. */
export function stillRuns(snapshot: ProcessSnapshot, ref: ProcessRef): boolean {
  return snapshot.isRunning(ref.pid) && snapshot.isSame(ref.pid, ref.startTime)
}
