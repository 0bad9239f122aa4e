import {describe, expect, test} from 'vitest'
import {VirtualClock} from '../../src/sim/time/clock.js'
import {Deadline, DeadlineQueue} from '../../src/sim/time/deadline-queue.js'

/** A deadline that runs a function (the timeout layer's TimedCall is the real one). */
class Call extends Deadline {
  constructor(private readonly fn: () => void) {
    super()
  }

  onDeadline(): void {
    this.fn()
  }
}

const add = (q: DeadlineQueue, fn: () => void) => q.schedule(new Call(fn))

describe('deadline queue', () => {
  test('each deadline fires at its own time, in order, on one clock timer', async () => {
    const clock = new VirtualClock()
    const q = new DeadlineQueue(clock, 100)
    const fired: string[] = []
    add(q, () => fired.push(`a@${clock.now()}`))
    await clock.advance(30)
    add(q, () => fired.push(`b@${clock.now()}`))
    await clock.advance(10)
    add(q, () => fired.push(`c@${clock.now()}`))
    expect(clock.pending()).toBe(1)
    await clock.advance(59)
    expect(fired).toEqual([])
    await clock.advance(1)
    expect(fired).toEqual(['a@100'])
    await clock.advance(100)
    expect(fired).toEqual(['a@100', 'b@130', 'c@140'])
    expect(clock.pending()).toBe(0)
  })

  test('a cancelled deadline never fires; when none is left the clock timer lapses and is not re-armed', async () => {
    const clock = new VirtualClock()
    const q = new DeadlineQueue(clock, 100)
    const fired: string[] = []
    const a = add(q, () => fired.push('a'))
    await clock.advance(50)
    const b = add(q, () => fired.push('b'))
    a.cancel()
    a.cancel()
    expect(q.size).toBe(1)
    await clock.advance(60)
    expect(fired).toEqual([])
    b.cancel()
    expect(q.size).toBe(0)
    // Left armed (cheaper than clearing it for every request of a quiet mesh), it finds nothing due.
    expect(clock.pending()).toBe(1)
    await clock.advance(40)
    expect(clock.pending()).toBe(0)
    expect(fired).toEqual([])
    add(q, () => fired.push('c'))
    await clock.advance(100)
    expect(fired).toEqual(['c'])
    expect(clock.pending()).toBe(0)
  })

  test('a deadline added from a firing one is kept', async () => {
    const clock = new VirtualClock()
    const q = new DeadlineQueue(clock, 10)
    const fired: number[] = []
    const again = () => {
      fired.push(clock.now())
      if (fired.length < 3) add(q, again)
    }
    add(q, again)
    await clock.advance(100)
    expect(fired).toEqual([10, 20, 30])
  })

  test('thousands of deadlines, most cancelled: the rest fire, and the queue does not grow without bound', async () => {
    const clock = new VirtualClock()
    const q = new DeadlineQueue(clock, 5)
    let fired = 0
    const kept = []
    for (let i = 0; i < 5000; i++) {
      const t = add(q, () => fired++)
      if (i % 100 === 0) kept.push(t)
      else t.cancel()
      if (i % 10 === 0) await clock.advance(1)
    }
    await clock.advance(10)
    expect(fired).toBe(kept.length)
    expect(q.size).toBe(0)
  })

  test('a timer left from an earlier deadline wakes early for a later one and waits for the rest', async () => {
    const clock = new VirtualClock()
    const q = new DeadlineQueue(clock, 100)
    const fired: number[] = []
    add(q, () => fired.push(clock.now())).cancel()
    await clock.advance(60)
    add(q, () => fired.push(clock.now()))
    await clock.advance(40)
    expect(fired).toEqual([])
    expect(clock.pending()).toBe(1)
    await clock.advance(60)
    expect(fired).toEqual([160])
    expect(clock.pending()).toBe(0)
  })
})
