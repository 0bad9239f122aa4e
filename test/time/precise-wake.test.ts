// PreciseWake on the real clock: the one place simulated latency meets real time.
// Bounds are generous (a loaded 2-core machine); what they rule out is setTimeout's
// whole milliseconds, which make a 0.5 ms sleep take ~1 ms or more.
import {execFileSync} from 'node:child_process'
import {existsSync} from 'node:fs'
import {fileURLToPath} from 'node:url'
import {afterAll, describe, expect, test} from 'vitest'
import {realClock} from '../../src/sim/time/clock.js'
import {Deadline, DeadlineHeap} from '../../src/sim/time/deadline-queue.js'
import {PreciseWake} from '../../src/sim/time/precise-wake.js'

const wake = new PreciseWake(realClock)
afterAll(() => wake.close())

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]
}

describe('precise wake', () => {
  test('sleeps of a fraction of a millisecond end at their time: never early, a median well under setTimeout\'s millisecond late', async () => {
    const heap = new DeadlineHeap(realClock, wake)
    const late: number[] = []
    for (let i = 0; i < 300; i++) {
      const ms = 0.2 + (i % 7) * 0.1
      const began = realClock.now()
      await heap.sleep(ms)
      late.push(realClock.now() - began - ms)
    }
    expect(Math.min(...late)).toBeGreaterThanOrEqual(0)
    expect(median(late)).toBeLessThan(0.25)
  })

  test('many sleepers at once wake in time order, each at or after its time', async () => {
    const heap = new DeadlineHeap(realClock, wake)
    const due: number[] = []
    const late: number[] = []
    // The heap's own deadlines (`at`): two taken a few µs apart may be due in either order.
    class Recorded extends Deadline {
      constructor(private readonly done_: () => void) {
        super()
      }
      onDeadline(): void {
        due.push(this.at)
        late.push(realClock.now() - this.at)
        this.done_()
      }
    }
    await Promise.all(Array.from({length: 200}, (_, i) => new Promise<void>((resolve) => heap.schedule(new Recorded(resolve), ((i * 37) % 200) / 40)))) // 0 … 5 ms, shuffled
    expect(due).toEqual([...due].sort((a, b) => a - b))
    expect(Math.min(...late)).toBeGreaterThanOrEqual(-0.001)
  })

  test('once its worker is gone, the clock\'s own timer takes over: a sleep still ends', async () => {
    const own = new PreciseWake(realClock)
    await own.close()
    const heap = new DeadlineHeap(realClock, own)
    const began = realClock.now()
    await heap.sleep(2)
    expect(realClock.now() - began).toBeGreaterThanOrEqual(2)
  })
})

const DIST = fileURLToPath(new URL('../../dist/sim/time/precise-wake.js', import.meta.url))
describe.skipIf(!existsSync(DIST))('precise wake in a process (dist)', () => {
  test('a pending sleep keeps the process up, as a timer would; nothing pending lets it exit', () => {
    const script = `
      const {DeadlineHeap} = await import(${JSON.stringify(new URL('../../dist/sim/time/deadline-queue.js', import.meta.url).href)})
      const {preciseWake} = await import(${JSON.stringify(new URL('../../dist/sim/time/precise-wake.js', import.meta.url).href)})
      const {realClock} = await import(${JSON.stringify(new URL('../../dist/sim/time/clock.js', import.meta.url).href)})
      const heap = new DeadlineHeap(realClock, preciseWake(realClock))
      heap.sleep(30).then(() => console.log('woke'))`
    const began = Date.now()
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], {encoding: 'utf8', timeout: 10_000})
    expect(out).toBe('woke\n')
    // The worker was unref'd once nothing was asleep: the process ended by itself.
    expect(Date.now() - began).toBeLessThan(10_000)
  })
})
