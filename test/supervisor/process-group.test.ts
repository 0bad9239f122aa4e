import {spawn} from 'node:child_process'
import {afterEach, describe, expect, it} from 'vitest'
import {groupAlive, groupMembers, killRecorded, signalGroup, stopGroup} from '../../src/sim/supervisor/process-group.js'
import {isRunning, recordFor} from '../../src/sim/supervisor/process-identity.js'
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

describe('signalGroup / groupAlive', () => {
  it('answers false for a group that does not exist, and refuses pgid 0 and 1', () => {
    expect(signalGroup(2 ** 30, 0)).toBe(false)
    expect(groupAlive(2 ** 30)).toBe(false)
    expect(signalGroup(0, 0)).toBe(false)
    expect(signalGroup(1, 0)).toBe(false)
  })
})

describe('stopGroup', {timeout: 20_000}, () => {
  it('SIGTERMs the whole group, grandchildren included', async () => {
    const pgid = startGroup('sleep 30 & sleep 30 & wait')
    const members = await waitUntil('three processes in the group', () => {
      const pids = groupMembers(pgid)!
      return pids.length === 3 && pids
    })
    expect(await stopGroup(pgid, {graceMs: 2000})).toBe('exited')
    expect(members.filter(isRunning)).toEqual([])
    expect(groupAlive(pgid)).toBe(false)
  })

  it('SIGKILLs a group that ignores SIGTERM once graceMs has passed', async () => {
    const pgid = startGroup("trap '' TERM; sleep 30 & wait")
    await waitUntil('the trap and the sleep', () => groupMembers(pgid)!.length === 2)
    expect(await stopGroup(pgid, {graceMs: 200})).toBe('killed')
    expect(groupAlive(pgid)).toBe(false)
  })
})

describe('killRecorded', {timeout: 20_000}, () => {
  it('kills a group whose leader has the recorded start time and skips one whose does not', async () => {
    const pgid = startGroup('sleep 30')
    const rec = recordFor(pgid, 'catalog-v1-0')!
    expect(rec.pgid).toBe(pgid)
    // The PID now names "another" process: same pid, a different start time.
    const reused = {...rec, instance: 'cart-v1-0', startTime: String(Number(rec.startTime) + 1)}
    const gone = {instance: 'payments-v1-0', pid: 2 ** 30, pgid: 2 ** 30, startTime: '1'}

    expect(await killRecorded([reused, gone], {graceMs: 500})).toEqual({killed: [], skipped: ['cart-v1-0', 'payments-v1-0']})
    expect(isRunning(pgid)).toBe(true)

    expect(await killRecorded([rec], {graceMs: 500})).toEqual({killed: ['catalog-v1-0'], skipped: []})
    expect(groupAlive(pgid)).toBe(false)
  })

  it('stops several groups in parallel', async () => {
    const records = ['a', 'b', 'c'].map((name) => recordFor(startGroup("trap '' TERM; sleep 30 & wait"), name)!)
    await waitUntil('every trap set', () => records.every((rec) => groupMembers(rec.pgid)!.length === 2))
    // On a virtual clock, so "in parallel" is checked without timing the wall clock.
    const clock = new VirtualClock()
    let settled = false
    const done = killRecorded(records, {graceMs: 300, clock}).finally(() => { settled = true })
    await clock.advance(300)
    // In series, only the first group would have had its SIGKILL by now.
    await waitUntil('every group gone after one grace period', () => records.every((rec) => !groupAlive(rec.pgid)))
    for (let i = 0; i < 100 && !settled; i++) await clock.advance(50)
    const result = await done
    expect(result.killed.sort()).toEqual(['a', 'b', 'c'])
    expect(records.filter((rec) => groupAlive(rec.pgid))).toEqual([])
  })
})
