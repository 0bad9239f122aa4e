import {describe, expect, test} from 'vitest'
import {VirtualClock} from '../../src/sim/time/clock.js'
import {Deadline, DeadlineHeap, DeadlineQueue} from '../../src/sim/time/deadline-queue.js'
import {SeededRandom} from '../../src/sim/time/random.js'

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

describe('deadline heap', () => {
  const at = (h: DeadlineHeap, ms: number, fn: () => void) => h.schedule(new Call(fn), ms)

  test('deadlines of any duration fire in time order, at fractions of a millisecond, on one clock timer', async () => {
    const clock = new VirtualClock()
    const h = new DeadlineHeap(clock)
    const fired: string[] = []
    for (const ms of [5, 0.5, 2.25, 1, 0.25]) at(h, ms, () => fired.push(`${ms}@${clock.now()}`))
    // Each sooner deadline re-arms the wake; the clock holds one live timer, whatever the count.
    expect(h.size).toBe(5)
    await clock.advance(0.24)
    expect(fired).toEqual([])
    await clock.advance(0.01)
    expect(fired).toEqual(['0.25@0.25'])
    await clock.advance(10)
    expect(fired).toEqual(['0.25@0.25', '0.5@0.5', '1@1', '2.25@2.25', '5@5'])
    expect(h.size).toBe(0)
    expect(clock.pending()).toBe(0)
  })

  test('a later deadline sets no timer of its own; a sooner one re-arms the wake', async () => {
    const clock = new VirtualClock()
    const h = new DeadlineHeap(clock)
    at(h, 10, () => undefined)
    expect(clock.pending()).toBe(1)
    for (let i = 0; i < 100; i++) at(h, 20 + i, () => undefined)
    expect(clock.pending()).toBe(1)
    const fired: number[] = []
    at(h, 3, () => fired.push(clock.now()))
    await clock.advance(3)
    expect(fired).toEqual([3])
    await clock.advance(200)
    expect(h.size).toBe(0)
  })

  test('a cancelled deadline leaves at once and never fires; the rest keep their order', async () => {
    const clock = new VirtualClock()
    const h = new DeadlineHeap(clock)
    const fired: number[] = []
    const first = at(h, 1, () => fired.push(1))
    const middle = at(h, 2, () => fired.push(2))
    at(h, 3, () => fired.push(3))
    first.cancel()
    middle.cancel()
    middle.cancel()
    expect(h.size).toBe(1)
    // The wake armed for the cancelled first one finds nothing due and waits for the third.
    await clock.advance(2.5)
    expect(fired).toEqual([])
    await clock.advance(0.5)
    expect(fired).toEqual([3])
  })

  test('thousands of seeded deadlines, a third cancelled: the others fire in time order, each at its time', async () => {
    const clock = new VirtualClock()
    const h = new DeadlineHeap(clock)
    const random = new SeededRandom(3)
    const fired: Array<{due: number; at: number}> = []
    const cancelled: Deadline[] = []
    let expected = 0
    for (let i = 0; i < 3000; i++) {
      const ms = random.next() * 50
      const due = clock.now() + ms
      const d = at(h, ms, () => fired.push({due, at: clock.now()}))
      if (random.next() < 1 / 3) cancelled.push(d)
      else expected++
      if (i % 100 === 0) {
        for (const c of cancelled.splice(0)) c.cancel()
        await clock.advance(random.next() * 5)
      }
    }
    for (const c of cancelled.splice(0)) c.cancel()
    await clock.advance(100)
    expect(fired).toHaveLength(expected)
    for (const f of fired) expect(f.at).toBe(f.due)
    for (let i = 1; i < fired.length; i++) expect(fired[i].at).toBeGreaterThanOrEqual(fired[i - 1].at)
    expect(h.size).toBe(0)
  })

  test('sleep resolves at its time; one added from a firing deadline is kept', async () => {
    const clock = new VirtualClock()
    const h = new DeadlineHeap(clock)
    const woke: number[] = []
    void h.sleep(0.75).then(() => {
      woke.push(clock.now())
      return h.sleep(0.5).then(() => woke.push(clock.now()))
    })
    await clock.advance(0.7)
    expect(woke).toEqual([])
    await clock.advance(1)
    expect(woke).toEqual([0.75, 1.25])
  })
})
