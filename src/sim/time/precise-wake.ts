// A Wake within a fraction of a millisecond, for the real clock. setTimeout counts whole
// milliseconds of the loop's cached time, so a 0.5 ms simulated latency took anywhere
// from 0 to ~2 ms. Polling performance.now() with setImmediate is precise but keeps the
// loop from ever blocking: a core burns for as long as anything is asleep. Here one
// worker thread blocks in Atomics.wait (a futex with a sub-millisecond timeout) until the
// earliest time, then posts a message, which wakes the main loop out of epoll. The main
// thread wakes `lead` early (what the hand-off took lately) and polls only that last
// stretch. One Wake serves one DeadlineHeap (it holds one time); a process shares one.
//
//   main: arm(at) ─▶ target = at − lead, gen++, notify ─▶ worker: wait(gen, target − now)
//   main: message(gen) ◀─ postMessage(gen) ◀──────────────── now ≥ target
//         └─▶ now < at? poll the rest with setImmediate ─▶ fn()
import {Worker} from 'node:worker_threads'
import type {Clock} from './clock.js'
import {clockWake, type Wake} from './deadline-queue.js'

// CommonJS, run with execArgv [] so a parent's --input-type=module cannot change that.
const WORKER = `
const {workerData, parentPort} = require('node:worker_threads')
const gen = new Int32Array(workerData.shared, 0, 1)
const target = new Float64Array(workerData.shared, 8, 1)
const shift = performance.timeOrigin - workerData.origin
const now = () => performance.now() + shift
for (;;) {
  const g = Atomics.load(gen, 0)
  const t = target[0]
  const left = t - now()
  if (t === 0) Atomics.wait(gen, 0, g)
  else if (left > 0) Atomics.wait(gen, 0, g, left)
  else {
    parentPort.postMessage(g)
    Atomics.wait(gen, 0, g)
  }
}`

/** The longest stretch polled on the main thread, however slow hand-offs were lately. */
const MAX_LEAD_MS = 0.3

export class PreciseWake implements Wake {
  private readonly gen: Int32Array
  private readonly target: Float64Array
  private readonly worker: Worker
  private fn: (() => void) | undefined = undefined
  private at = 0
  /** How early the worker is asked to wake: a moving average of its hand-off (ms). */
  private lead = 0.05
  private polling = false

  constructor(private readonly clock: Clock) {
    const shared = new SharedArrayBuffer(16)
    this.gen = new Int32Array(shared, 0, 1)
    this.target = new Float64Array(shared, 8, 1)
    this.worker = new Worker(WORKER, {
      eval: true,
      execArgv: [],
      workerData: {shared, origin: performance.timeOrigin},
      // It allocates next to nothing; an isolate still takes ~8 MB of RSS (4 MB of old
      // generation is too little for it to start).
      resourceLimits: {maxOldGenerationSizeMb: 8, maxYoungGenerationSizeMb: 1},
      stdout: false,
      stderr: false,
    })
    this.worker.unref()
    this.worker.on('message', this.onMessage)
    // Should the worker ever end, the clock's timer takes over: coarser, never lost.
    const fallBack = (): void => {
      if (this.fallback) return
      this.fallback = clockWake(clock)
      if (this.fn) this.fallback.arm(this.at, this.fn)
      this.fn = undefined
    }
    this.worker.once('error', fallBack)
    this.worker.once('exit', fallBack)
  }

  private fallback: Wake | undefined = undefined

  arm(at: number, fn: () => void): void {
    if (this.fallback) return this.fallback.arm(at, fn)
    this.fn = fn
    this.at = at
    this.target[0] = at - this.lead
    Atomics.add(this.gen, 0, 1)
    Atomics.notify(this.gen, 0)
    // Something asleep keeps the process up, as a pending setTimeout would.
    this.worker.ref()
  }

  disarm(): void {
    if (this.fallback) return this.fallback.disarm()
    this.fn = undefined
    this.target[0] = 0
    Atomics.add(this.gen, 0, 1)
    Atomics.notify(this.gen, 0)
    this.worker.unref()
  }

  /** Ends the worker (a process that exits does not need this). */
  close(): Promise<number> {
    this.fn = undefined
    this.fallback ??= clockWake(this.clock)
    return this.worker.terminate()
  }

  private readonly onMessage = (g: number): void => {
    // A message from a time since re-armed: the worker is already waiting for the new one.
    if (g !== Atomics.load(this.gen, 0) || !this.fn || this.polling) return
    // The hand-off this time. The lead follows a low quantile of it, not its mean: down at
    // once after a wake that had to poll (CPU spent), up slowly after a late one.
    const handoff = this.clock.now() - (this.at - this.lead)
    this.lead = handoff < this.lead ? (this.lead + handoff) / 2 : Math.min(MAX_LEAD_MS, this.lead + (handoff - this.lead) / 16)
    this.poll()
  }

  private readonly poll = (): void => {
    const fn = this.fn
    if (!fn) {
      this.polling = false
      return
    }
    if (this.clock.now() < this.at) {
      this.polling = true
      setImmediate(this.poll)
      return
    }
    this.polling = false
    this.fn = undefined
    this.worker.unref()
    fn()
  }
}

const wakes = new WeakMap<Clock, Wake>()

/** The process's precise Wake for `clock` (a real clock); the clock's own timer where no worker can start. */
export function preciseWake(clock: Clock): Wake {
  let wake = wakes.get(clock)
  if (!wake) {
    try {
      wake = new PreciseWake(clock)
    } catch {
      wake = clockWake(clock)
    }
    wakes.set(clock, wake)
  }
  return wake
}
