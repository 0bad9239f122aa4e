// Which process a PID names. PIDs are reused, so a record of a child we started
// carries its start time (field 22 of /proc/PID/stat): `mesh down` after a
// SIGKILLed daemon signals a group only if its leader is still the same process.

import {readFileSync} from 'node:fs'

export interface ProcessRecord {
  instance: string
  pid: number
  pgid: number
  /** Clock ticks since boot at which the process started, as /proc prints it. */
  startTime: string
}

export interface ProcStat {
  pid: number
  comm: string
  /** R, S, D, Z (zombie), T, X … */
  state: string
  ppid: number
  pgrp: number
  startTime: string
}

/**
 * Parses the text of /proc/PID/stat. comm (field 2) is in parentheses and may
 * itself contain spaces and parentheses, so fields are counted after the LAST ')'.
 */
export function parseStat(text: string): ProcStat | undefined {
  const open = text.indexOf('(')
  const close = text.lastIndexOf(')')
  if (open < 0 || close < open) return undefined
  const pid = Number(text.slice(0, open).trim())
  // rest[0] is field 3 (state), so field N is rest[N - 3].
  const rest = text.slice(close + 1).trim().split(/\s+/)
  const startTime = rest[22 - 3]
  if (!Number.isInteger(pid) || startTime === undefined || !/^\d+$/.test(startTime)) return undefined
  return {
    pid,
    comm: text.slice(open + 1, close),
    state: rest[0],
    ppid: Number(rest[4 - 3]),
    pgrp: Number(rest[5 - 3]),
    startTime,
  }
}

export function readStat(pid: number): ProcStat | undefined {
  if (!Number.isInteger(pid) || pid <= 0) return undefined
  let text: string
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8')
  } catch {
    return undefined
  }
  return parseStat(text)
}

export function readStartTime(pid: number): string | undefined {
  return readStat(pid)?.startTime
}

/** True while the PID names a process that has not exited (a zombie has exited). */
export function isRunning(pid: number): boolean {
  const stat = readStat(pid)
  return stat !== undefined && stat.state !== 'Z' && stat.state !== 'X'
}

/**
 * True if rec.pid still names the process we recorded. A zombie counts: it still
 * holds its PID (and its group's id), so that PID cannot yet have been reused.
 */
export function isSameProcess(rec: ProcessRecord): boolean {
  const startTime = readStartTime(rec.pid)
  return startTime !== undefined && startTime === rec.startTime
}

export function recordFor(pid: number, instance: string): ProcessRecord | undefined {
  const stat = readStat(pid)
  if (!stat) return undefined
  return {instance, pid, pgid: stat.pgrp, startTime: stat.startTime}
}
