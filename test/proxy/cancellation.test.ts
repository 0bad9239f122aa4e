import {describe, expect, test} from 'vitest'
import {Cancellation} from '../../src/sim/proxy/cancellation.js'
import {abortError, whenAborted} from '../../src/sim/abort-signal.js'
import {VirtualClock} from '../../src/sim/time/clock.js'

describe('Cancellation', () => {
  test('aborts once, calls each listener once, keeps the first reason; removed listeners are not called', () => {
    const c = new Cancellation()
    const calls: string[] = []
    const a = () => calls.push('a')
    const b = () => calls.push('b')
    c.addEventListener('abort', a)
    c.addEventListener('abort', b)
    c.removeEventListener('abort', b)
    const first = new Error('first')
    c.abort(first)
    c.abort(new Error('second'))
    expect(calls).toEqual(['a'])
    expect(c.aborted).toBe(true)
    expect(c.reason).toBe(first)
  })

  test('any number of listeners: each still added when it aborts is called once, whichever were removed', () => {
    const c = new Cancellation()
    const calls: number[] = []
    const fns = [0, 1, 2, 3, 4].map((i) => () => calls.push(i))
    for (const fn of fns) c.addEventListener('abort', fn)
    c.removeEventListener('abort', fns[0])
    c.removeEventListener('abort', fns[3])
    c.removeEventListener('abort', () => undefined)
    const late = () => calls.push(5)
    c.addEventListener('abort', late)
    c.abort(new Error('stop'))
    c.abort(new Error('again'))
    expect(calls.sort()).toEqual([1, 2, 4, 5])
    c.addEventListener('abort', () => calls.push(6))
    expect(calls).toHaveLength(4)
  })

  test('works as the signal of Clock.sleep', async () => {
    const clock = new VirtualClock()
    const c = new Cancellation()
    const slept = clock.sleep(1000, c.signal).catch((e: Error) => e.message)
    c.abort(new Error('stop'))
    expect(await slept).toBe('stop')
  })
})

describe('whenAborted (abort-signal.ts)', () => {
  test('runs at once on an aborted signal, on abort otherwise, and not after the wait was stopped', () => {
    for (const make of [() => new Cancellation(), () => new AbortController()]) {
      const calls: string[] = []
      const done = make()
      done.abort(new Error('gone'))
      whenAborted(done.signal, () => calls.push('at once'))
      const later = make()
      whenAborted(later.signal, () => calls.push('on abort'))
      const stopped = make()
      const stop = whenAborted(stopped.signal, () => calls.push('never'))
      expect(calls).toEqual(['at once'])
      stop()
      later.abort(new Error('bye'))
      stopped.abort(new Error('bye'))
      later.abort(new Error('twice'))
      expect(calls).toEqual(['at once', 'on abort'])
    }
    expect(whenAborted(undefined, () => expect.unreachable())).toBeTypeOf('function')
  })

  test('abortError: the reason when it is an Error, else "aborted"', () => {
    const a = new AbortController()
    const why = new Error('client went away')
    a.abort(why)
    expect(abortError(a.signal)).toBe(why)
    const b = new AbortController()
    b.abort('a string')
    expect(abortError(b.signal).message).toBe('aborted')
  })
})
