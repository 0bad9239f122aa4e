import {describe, expect, test} from 'vitest'
import {Cancellation} from '../../src/sim/proxy/cancellation.js'
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

  test('a child aborts with its parent, not the other way round; unlink stops forwarding', () => {
    const parent = new Cancellation()
    const {child} = Cancellation.under(parent.signal)
    child.abort(new Error('try timed out'))
    expect(parent.aborted).toBe(false)
    const {child: second, unlink} = Cancellation.under(parent.signal)
    const {child: third} = Cancellation.under(parent.signal)
    unlink()
    parent.abort(new Error('client left'))
    expect(second.aborted).toBe(false)
    expect(third.reason).toEqual(new Error('client left'))
  })

  test('works as the signal of Clock.sleep', async () => {
    const clock = new VirtualClock()
    const c = new Cancellation()
    const slept = clock.sleep(1000, c.signal).catch((e: Error) => e.message)
    c.abort(new Error('stop'))
    expect(await slept).toBe('stop')
  })
})
