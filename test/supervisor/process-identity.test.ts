import {spawn} from 'node:child_process'
import {once} from 'node:events'
import {describe, expect, it} from 'vitest'
import {isRunning, isSameProcess, parseStat, readStartTime, recordFor} from '../../src/sim/supervisor/process-identity.js'

// Fields 3..22 of a real /proc/PID/stat line; field 22 (start time) is 8675309.
const TAIL = 'S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 8675309 1000000 200 18446744073709551615'

describe('parseStat', () => {
  it('reads the start time (field 22) of a plain comm', () => {
    const stat = parseStat(`4242 (node) ${TAIL}\n`)
    expect(stat).toEqual({pid: 4242, comm: 'node', state: 'S', ppid: 1, pgrp: 4242, startTime: '8675309'})
  })

  it('counts fields after the LAST parenthesis when comm has spaces and parentheses', () => {
    const stat = parseStat(`4242 (my (weird) ) name) ${TAIL}`)
    expect(stat?.comm).toBe('my (weird) ) name')
    expect(stat?.startTime).toBe('8675309')
    expect(stat?.pgrp).toBe(4242)
  })

  it('gives up on text that is not a stat line', () => {
    expect(parseStat('')).toBeUndefined()
    expect(parseStat('4242 (node) S 1 2')).toBeUndefined()
    expect(parseStat('garbage')).toBeUndefined()
  })
})

describe('readStartTime', () => {
  it('reads our own start time and returns undefined for a pid that is gone', async () => {
    expect(readStartTime(process.pid)).toMatch(/^\d+$/)
    const child = spawn('true', {stdio: 'ignore'})
    const pid = child.pid!
    await once(child, 'exit') // node reaps it, so the pid no longer exists
    expect(readStartTime(pid)).toBeUndefined()
    expect(isRunning(pid)).toBe(false)
    expect(readStartTime(-1)).toBeUndefined()
  })
})

describe('isSameProcess', () => {
  it('is true for the recorded process and false once the start time differs', () => {
    const rec = recordFor(process.pid, 'self')!
    expect(rec.instance).toBe('self')
    expect(isSameProcess(rec)).toBe(true)
    expect(isSameProcess({...rec, startTime: String(Number(rec.startTime) + 1)})).toBe(false)
    expect(recordFor(2 ** 30, 'nobody')).toBeUndefined()
  })
})
