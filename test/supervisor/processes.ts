// What the supervisor tests ask of the process table, through the table the platform (or
// MESH_PROCESS_TABLE) picks, so the same tests hold under /proc and under ps.
import {execFileSync} from 'node:child_process'
import {groupAlive as groupAliveIn} from '../../src/sim/supervisor/process-group.js'
import type {ProcessRecord} from '../../src/sim/supervisor/process-identity.js'
import {processTable, type ProcessSnapshot} from '../../src/sim/supervisor/process-table.js'

export const table = processTable()

export const isRunning = (pid: number) => table.readSync().isRunning(pid)
export const groupMembers = (pgid: number) => table.readSync().groupMembers(pgid)
export const groupAlive = (pgid: number) => groupAliveIn(pgid, table.readSync())
export const startTimeOf = (pid: number) => table.readSync().get(pid)?.startTime

/** A record as the daemon writes one to state.json (the Supervisor builds its own from what it spawned). */
export function recordFor(snapshot: ProcessSnapshot, pid: number, instance: string): ProcessRecord | undefined {
  const entry = snapshot.get(pid)
  if (!entry) return undefined
  return {instance, pid, pgid: entry.pgid, startTime: entry.startTime}
}

/** The command name, as `ps -o comm=` prints it (portable; only tests need it). */
export function comm(pid: number): string | undefined {
  try {
    return execFileSync('ps', ['-o', 'comm=', '-p', String(pid)], {encoding: 'utf8'}).trim().split('/').pop()
  } catch {
    return undefined
  }
}
