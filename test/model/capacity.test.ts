import {describe, expect, it} from 'vitest'
import {Capacity, type Release} from '../../src/sim/model/capacity.js'

async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve()
}

describe('Capacity', () => {
  it('grants N slots at once and queues the rest in arrival order', async () => {
    const capacity = new Capacity(2)
    const granted: number[] = []
    const releases = new Map<number, Release>()
    for (let i = 0; i < 5; i++) {
      void capacity.acquire().then((release) => {
        granted.push(i)
        releases.set(i, release)
      })
    }
    await settle()
    expect(granted).toEqual([0, 1])
    expect(capacity.inFlight).toBe(2)
    expect(capacity.queued).toBe(3)

    releases.get(1)!()
    await settle()
    expect(granted).toEqual([0, 1, 2])

    releases.get(0)!()
    releases.get(0)!() // idempotent: must not free a second slot
    await settle()
    expect(granted).toEqual([0, 1, 2, 3])
    expect(capacity.inFlight).toBe(2)
    expect(capacity.queued).toBe(1)
  })

  it('never runs more than N at once under a burst, and serves them all', async () => {
    const capacity = new Capacity(3)
    let running = 0
    let peak = 0
    const order: number[] = []
    const work = Array.from({length: 20}, (_, i) =>
      capacity.run(async () => {
        running++
        peak = Math.max(peak, running)
        await settle()
        order.push(i)
        running--
      }),
    )
    await Promise.all(work)
    expect(peak).toBe(3)
    expect(order).toHaveLength(20)
    expect(capacity.inFlight).toBe(0)
  })

  it('does not let a newcomer overtake a queued waiter', async () => {
    const capacity = new Capacity(1)
    const first = await capacity.acquire()
    const granted: string[] = []
    void capacity.acquire().then(() => granted.push('queued'))
    first()
    void capacity.acquire().then(() => granted.push('newcomer'))
    await settle()
    expect(granted).toEqual(['queued'])
  })

  it('is unbounded at 0', async () => {
    const capacity = new Capacity(0)
    await Promise.all(Array.from({length: 1000}, () => capacity.acquire()))
    expect(capacity.inFlight).toBe(1000)
    expect(capacity.queued).toBe(0)
  })

  it('drops a queued waiter whose signal aborts', async () => {
    const capacity = new Capacity(1)
    const release = await capacity.acquire()
    const controller = new AbortController()
    const waiting = capacity.acquire(controller.signal)
    controller.abort(new Error('client went away'))
    await expect(waiting).rejects.toThrow('client went away')
    expect(capacity.queued).toBe(0)
    release()
    expect(capacity.inFlight).toBe(0)
  })
})
