// Signals to whole process groups. Every child runs detached, as the leader of its
// own group (pgid = pid), so one signal reaches what it started too (npm → node).
//
//   stopGroup:  SIGTERM ─▶ poll every 50 ms ─▶ gone?  'exited'
//                               └─ graceMs passed ─▶ SIGKILL ─▶ 'killed'

import {readdirSync} from 'node:fs'
import {realClock, type Clock} from '../time/clock.js'
import {isSameProcess, readStat, type ProcessRecord} from './process-identity.js'

const POLL_MS = 50
// SIGKILL cannot be caught; this only bounds the wait for a process stuck in the kernel.
const AFTER_KILL_WAIT_MS = 2000

/** Sends signal to every process in the group. False if the group no longer exists. */
export function signalGroup(pgid: number, signal: NodeJS.Signals | number): boolean {
  if (!Number.isInteger(pgid) || pgid <= 1) return false // -1 and -0 would mean "everyone" / "our own group"
  try {
    process.kill(-pgid, signal)
    return true
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return false
    throw error
  }
}

/**
 * True while any process of the group is still running. Exited processes that
 * nobody has reaped (zombies: an init that does not reap, as in some containers)
 * still answer kill 0, so on Linux the group's members are looked up in /proc.
 */
export function groupAlive(pgid: number): boolean {
  if (!Number.isInteger(pgid) || pgid <= 1) return false
  try {
    process.kill(-pgid, 0)
  } catch (error) {
    // EPERM: the group exists but belongs to someone else; it is alive all the same.
    return (error as NodeJS.ErrnoException).code !== 'ESRCH'
  }
  const members = groupMembers(pgid)
  return members === undefined || members.length > 0
}

/** PIDs of the group's running (not zombie) processes; undefined where there is no /proc. */
export function groupMembers(pgid: number): number[] | undefined {
  let entries: string[]
  try {
    entries = readdirSync('/proc')
  } catch {
    return undefined
  }
  const pids: number[] = []
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue
    const stat = readStat(Number(entry))
    if (stat && stat.pgrp === pgid && stat.state !== 'Z' && stat.state !== 'X') pids.push(stat.pid)
  }
  return pids
}

export interface StopGroupOptions {
  graceMs: number
  clock?: Clock
}

/** SIGTERM the group once, wait up to graceMs for it to go, then SIGKILL it. */
export async function stopGroup(pgid: number, {graceMs, clock = realClock}: StopGroupOptions): Promise<'exited' | 'killed'> {
  if (!groupAlive(pgid) || !signalGroup(pgid, 'SIGTERM')) return 'exited'
  // A paused group (the `pause` fault, SIGSTOP) would hold SIGTERM pending forever.
  signalGroup(pgid, 'SIGCONT')
  if (await waitGone(pgid, graceMs, clock)) return 'exited'
  signalGroup(pgid, 'SIGKILL')
  await waitGone(pgid, AFTER_KILL_WAIT_MS, clock)
  return 'killed'
}

async function waitGone(pgid: number, withinMs: number, clock: Clock): Promise<boolean> {
  const deadline = clock.now() + withinMs
  for (;;) {
    if (!groupAlive(pgid)) return true
    const left = deadline - clock.now()
    if (left <= 0) return false
    await clock.sleep(Math.min(POLL_MS, left))
  }
}

export interface KillRecordedResult {
  /** Instances whose group was signalled. */
  killed: string[]
  /** Instances whose leader is gone or whose PID now names another process. */
  skipped: string[]
}

/**
 * For `mesh down` when the daemon is gone: stop each recorded group, in parallel,
 * but only if its leader still has the recorded start time — a reused PID is
 * never touched.
 */
export async function killRecorded(records: ProcessRecord[], {graceMs, clock}: StopGroupOptions): Promise<KillRecordedResult> {
  const killed: string[] = []
  const skipped: string[] = []
  await Promise.all(
    records.map(async (rec) => {
      // Only a leader's identity can be checked, so a group is trusted only through its leader.
      if (rec.pgid !== rec.pid || !isSameProcess(rec)) {
        skipped.push(rec.instance)
        return
      }
      await stopGroup(rec.pgid, {graceMs, clock})
      killed.push(rec.instance)
    }),
  )
  return {killed, skipped}
}
