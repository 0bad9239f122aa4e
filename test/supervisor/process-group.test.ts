import {spawn} from 'node:child_process'
import {existsSync} from 'node:fs'
import {afterEach, describe, expect, it} from 'vitest'
import {groupAlive, killRecorded, signalGroup, stopTree, treeOf} from '../../src/sim/supervisor/process-group.js'
import {recordFor} from './processes.js'
import {processTable, type ProcessTableKind} from '../../src/sim/supervisor/process-table.js'
import {VirtualClock} from '../../src/sim/time/clock.js'
import {waitUntil} from './wait-until.js'

const started: number[] = []

/** A detached child, as the supervisor starts them: the leader of its own group. */
function startGroup(script: string): number {
  const child = spawn('sh', ['-c', script], {detached: true, stdio: 'ignore'})
  child.unref()
  started.push(child.pid!)
  return child.pid!
}

afterEach(() => {
  for (const pgid of started.splice(0)) signalGroup(pgid, 'SIGKILL')
})

describe('signalGroup', () => {
  it('answers false for a group that does not exist, and refuses pgid 0 and 1', () => {
    expect(signalGroup(2 ** 30, 0)).toBe(false)
    expect(signalGroup(0, 0)).toBe(false)
    expect(signalGroup(1, 0)).toBe(false)
  })
})

// Every case under each table the machine has: the ps one is what a Mac runs.
const kinds: ProcessTableKind[] = existsSync('/proc/self/stat') ? ['proc', 'ps'] : ['ps']
describe.each(kinds)('under the %s table', {timeout: 20_000}, (kind) => {
  const table = processTable(kind)
  const members = (pgid: number) => table.readSync().groupMembers(pgid)
  const alive = (pgid: number) => groupAlive(pgid, table.readSync())
  const runs = (pid: number) => table.readSync().isRunning(pid)

  it('stopTree SIGTERMs the whole group, grandchildren included', async () => {
    const pgid = startGroup('sleep 30 & sleep 30 & wait')
    const pids = await waitUntil('three processes in the group', () => members(pgid).length === 3 && members(pgid))
    expect(await stopTree({pgid, others: []}, {graceMs: 2000, table})).toBe('exited')
    expect(pids.filter(runs)).toEqual([])
    expect(alive(pgid)).toBe(false)
  })

  it('stopTree SIGKILLs a group that ignores SIGTERM once graceMs has passed', async () => {
    const pgid = startGroup("trap '' TERM; sleep 30 & wait")
    await waitUntil('the trap and the sleep', () => members(pgid).length === 2)
    expect(await stopTree({pgid, others: []}, {graceMs: 200, table})).toBe('killed')
    expect(alive(pgid)).toBe(false)
  })

  it('a descendant that left the group (setsid) is found through its parent and stopped with the group', async () => {
    const pgid = startGroup('setsid sleep 31 & exec sleep 30')
    const escaped = await waitUntil('the setsid sleep', () => table.readSync().descendants(pgid).find((d) => d.pgid !== pgid))
    started.push(escaped.pid)
    const tree = treeOf(recordFor(table.readSync(), pgid, 'catalog-v1-0')!, table.readSync())
    expect(tree).toEqual({pgid, others: [{pid: escaped.pid, startTime: escaped.startTime}]})
    expect(await stopTree(tree, {graceMs: 2000, table})).toBe('exited')
    expect(runs(escaped.pid)).toBe(false)
  })

  it('killRecorded kills what still has its recorded start time and never signals a pid that names another process', async () => {
    const pgid = startGroup('sleep 30')
    const orphan = startGroup('sleep 32')
    const snapshot = table.readSync()
    const rec = recordFor(snapshot, pgid, 'catalog-v1-0')!
    const orphanRef = {pid: orphan, startTime: snapshot.get(orphan)!.startTime}
    expect(rec.pgid).toBe(pgid)
    // The pids now name "other" processes: same pids, different start times.
    const wrong = (t: string) => String(Number(t) + 1)
    const reused = {...rec, instance: 'cart-v1-0', startTime: wrong(rec.startTime), descendants: [{pid: orphan, startTime: wrong(orphanRef.startTime)}]}
    const gone = {instance: 'payments-v1-0', pid: 2 ** 30, pgid: 2 ** 30, startTime: '1'}

    expect(await killRecorded([reused, gone], {graceMs: 500, table})).toEqual({killed: [], skipped: ['cart-v1-0', 'payments-v1-0']})
    expect(runs(pgid)).toBe(true)
    expect(runs(orphan)).toBe(true)

    // A leader gone but a recorded descendant still the same: that one is stopped.
    expect(await killRecorded([{...gone, descendants: [orphanRef]}, rec], {graceMs: 500, table})).toEqual({killed: expect.arrayContaining(['catalog-v1-0', 'payments-v1-0']), skipped: []})
    expect(alive(pgid)).toBe(false)
    expect(runs(orphan)).toBe(false)
  })

  it('killRecorded stops several groups in parallel', async () => {
    const records = ['a', 'b', 'c'].map((name) => recordFor(table.readSync(), startGroup("trap '' TERM; sleep 30 & wait"), name)!)
    await waitUntil('every trap set', () => records.every((rec) => members(rec.pgid).length === 2))
    // On a virtual clock, so "in parallel" is checked without timing the wall clock.
    const clock = new VirtualClock()
    let settled = false
    const done = killRecorded(records, {graceMs: 300, clock, table}).finally(() => {
      settled = true
    })
    // Let every tree's first look at the table and its SIGTERM happen before time moves.
    await waitUntil('every group signalled', () => records.every((rec) => members(rec.pgid).length === 2) && clock.pending() >= 3, 10_000)
    await clock.advance(300)
    // In series, only the first group would have had its SIGKILL by now.
    await waitUntil('every group gone after one grace period', () => records.every((rec) => !alive(rec.pgid)), 10_000)
    for (let i = 0; i < 200 && !settled; i++) await clock.advance(50)
    const result = await done
    expect(result.killed.sort()).toEqual(['a', 'b', 'c'])
  })
})
