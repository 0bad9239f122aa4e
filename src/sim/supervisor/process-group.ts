// Signals to whole process trees. Every child runs detached, as the leader of its own
// group (pgid = pid), so one signal reaches what it started too (npm → node). A
// descendant that left the group (`setsid cmd &`) is signalled by pid, and only while
// its start time still matches: a pid reused by another process is never touched.
//
//   stopTree:  SIGTERM ─▶ poll ─▶ all gone?  'exited'
//                           └─ graceMs passed ─▶ SIGKILL ─▶ 'killed'

import {realClock, type Clock} from '../time/clock.js'
import {type ProcessRecord, type ProcessRef, stillRuns} from './process-identity.js'
import {processTable, type ProcessSnapshot, type ProcessTable} from './process-table.js'

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

/** Signals one process; one gone since it was looked at is no error. */
export function signalPid(pid: number, signal: NodeJS.Signals | number): void {
  if (!Number.isInteger(pid) || pid <= 1) return
  try {
    process.kill(pid, signal)
  } catch {
    // Gone since the snapshot, or never ours to signal: either way nothing to do.
  }
}

/**
 * True while any process of the group is still running. Exited processes that nobody
 * has reaped (zombies: an init that does not reap, as in some containers) still answer
 * kill 0, so the group's members are looked up in the process table.
 */
export function groupAlive(pgid: number, snapshot: ProcessSnapshot): boolean {
  if (!Number.isInteger(pgid) || pgid <= 1) return false
  try {
    process.kill(-pgid, 0)
  } catch (error) {
    // EPERM: the group exists but belongs to someone else; it is alive all the same.
    return (error as NodeJS.ErrnoException).code !== 'ESRCH'
  }
  return snapshot.groupMembers(pgid).length > 0
}

/** What one instance left running: its group, and what left the group. */
export interface ProcessTree {
  /** A group whose leader was checked to be ours; signalled as a whole. */
  pgid?: number
  /** Processes outside that group, each signalled only while it is still the recorded process. */
  others: ProcessRef[]
}

function treeAlive(tree: ProcessTree, snapshot: ProcessSnapshot): boolean {
  return (tree.pgid !== undefined && groupAlive(tree.pgid, snapshot)) || tree.others.some((ref) => stillRuns(snapshot, ref))
}

function signalTree(tree: ProcessTree, signal: NodeJS.Signals, snapshot: ProcessSnapshot): void {
  if (tree.pgid !== undefined) signalGroup(tree.pgid, signal)
  for (const ref of tree.others) {
    if (!stillRuns(snapshot, ref)) continue
    // One that called setsid leads a group of its own: what it started goes with it.
    if (snapshot.get(ref.pid)?.pgid === ref.pid) signalGroup(ref.pid, signal)
    signalPid(ref.pid, signal)
  }
}

/** SIGKILL now, no grace (a crashed instance's leftovers, a second Ctrl-C). */
export function killTree(tree: ProcessTree, snapshot: ProcessSnapshot): boolean {
  if (!treeAlive(tree, snapshot)) return false
  signalTree(tree, 'SIGKILL', snapshot)
  return true
}

export interface StopOptions {
  graceMs: number
  clock?: Clock
  table?: ProcessTable
}

/** SIGTERM the tree once, wait up to graceMs for all of it to go, then SIGKILL what is left. */
export async function stopTree(tree: ProcessTree, {graceMs, clock = realClock, table = processTable()}: StopOptions): Promise<'exited' | 'killed'> {
  const snapshot = await table.read()
  if (!treeAlive(tree, snapshot)) return 'exited'
  signalTree(tree, 'SIGTERM', snapshot)
  // A paused group (the `pause` fault, SIGSTOP) would hold SIGTERM pending forever.
  signalTree(tree, 'SIGCONT', snapshot)
  if (await waitGone(tree, graceMs, clock, table)) return 'exited'
  signalTree(tree, 'SIGKILL', await table.read())
  await waitGone(tree, AFTER_KILL_WAIT_MS, clock, table)
  return 'killed'
}

async function waitGone(tree: ProcessTree, withinMs: number, clock: Clock, table: ProcessTable): Promise<boolean> {
  // Each look at a `ps` table starts a process: look less often.
  const pollMs = table.kind === 'ps' ? 150 : 50
  const deadline = clock.now() + withinMs
  for (;;) {
    if (!treeAlive(tree, await table.read())) return true
    const left = deadline - clock.now()
    if (left <= 0) return false
    await clock.sleep(Math.min(pollMs, left))
  }
}

/**
 * An instance's tree as `mesh down` finds it from its record: the group only if its leader
 * is still the recorded process; the descendants outside the group that still descend from
 * it, and those recorded earlier (orphans whose parent exited) that are still the same.
 */
export function treeOf(record: ProcessRecord, snapshot: ProcessSnapshot): ProcessTree {
  // Only a leader's identity can be checked, so a group is trusted only through its leader.
  const leaderOurs = record.pgid === record.pid && snapshot.isSame(record.pid, record.startTime)
  const others = outsiders(leaderOurs ? record.pid : undefined, record.pgid, record.descendants ?? [], snapshot)
  return {pgid: leaderOurs ? record.pgid : undefined, others: [...others.values()]}
}

/**
 * What left group `pgid`: `pid`'s live descendants outside it, and those `recorded` earlier
 * that are still the same process (an orphan no longer descends from anyone).
 */
export function outsiders(pid: number | undefined, pgid: number | undefined, recorded: Iterable<ProcessRef>, snapshot: ProcessSnapshot): Map<number, ProcessRef> {
  const out = new Map<number, ProcessRef>()
  if (pid !== undefined) for (const d of snapshot.descendants(pid)) if (d.pgid !== pgid) out.set(d.pid, {pid: d.pid, startTime: d.startTime})
  for (const ref of recorded) if (!out.has(ref.pid) && stillRuns(snapshot, ref)) out.set(ref.pid, ref)
  return out
}

export interface KillRecordedResult {
  /** Instances whose processes were signalled. */
  killed: string[]
  /** Instances of which nothing recorded is still the same process. */
  skipped: string[]
}

/**
 * For `mesh down` when the daemon is gone: stop each recorded instance's tree, in
 * parallel, only what is still the recorded process — a reused PID is never touched.
 */
export async function killRecorded(records: ProcessRecord[], {graceMs, clock, table = processTable()}: StopOptions): Promise<KillRecordedResult> {
  const killed: string[] = []
  const skipped: string[] = []
  const snapshot = await table.read()
  await Promise.all(
    records.map(async (rec) => {
      const tree = treeOf(rec, snapshot)
      if (tree.pgid === undefined && tree.others.length === 0) {
        skipped.push(rec.instance)
        return
      }
      await stopTree(tree, {graceMs, clock, table})
      killed.push(rec.instance)
    }),
  )
  return {killed, skipped}
}
