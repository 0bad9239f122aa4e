// What the supervisor tests ask of the process table, through the table the platform (or
// MESH_PROCESS_TABLE) picks, so the same tests hold under /proc and under ps.
import {execFileSync} from 'node:child_process'
import {groupAlive as groupAliveIn} from '../../src/sim/supervisor/process-group.js'
import {processTable} from '../../src/sim/supervisor/process-table.js'

export const table = processTable()

export const isRunning = (pid: number) => table.readSync().isRunning(pid)
export const groupMembers = (pgid: number) => table.readSync().groupMembers(pgid)
export const groupAlive = (pgid: number) => groupAliveIn(pgid, table.readSync())
export const startTimeOf = (pid: number) => table.readSync().get(pid)?.startTime

/** The command name, as `ps -o comm=` prints it (portable; only tests need it). */
export function comm(pid: number): string | undefined {
  try {
    return execFileSync('ps', ['-o', 'comm=', '-p', String(pid)], {encoding: 'utf8'}).trim().split('/').pop()
  } catch {
    return undefined
  }
}
