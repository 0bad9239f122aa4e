// Virtual time as an event engine: a request's retries, backoffs, per-try timeouts
// and an injected delay, run through the real layers on a VirtualClock, happen at the
// times worked out by hand — however many promise turns each step takes.
import {describe, expect, test} from 'vitest'
import {FaultSet} from '../../src/sim/faults/fault-set.js'
import {fault} from '../../src/sim/proxy/layers/fault.js'
import {retry} from '../../src/sim/proxy/layers/retry.js'
import {timeout} from '../../src/sim/proxy/layers/timeout.js'
import {RetryBudget} from '../../src/sim/proxy/policy/retry-budget.js'
import {ProxyError} from '../../src/sim/proxy/respond.js'
import type {CallContext, MeshResponse} from '../../src/sim/proxy/stack.js'
import type {RetryConfig} from '../../src/sim/config/types.js'
import {VirtualClock} from '../../src/sim/time/clock.js'
import type {Random} from '../../src/sim/time/random.js'
import {type AsyncService, callContext, meshRequest, viaPromises} from '../helpers/proxy-context.js'

/** Deeper than the 10 turns the clock used to wait after a timer. */
const DEEP = 15

async function turns(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await Promise.resolve()
}

/** Every draw is 0.5: full-jitter backoff is then half its ceiling, which a hand can compute. */
const half: Random = {next: () => 0.5, int: (n) => Math.floor(n / 2), normal: () => 0}

describe('VirtualClock as an event engine', () => {
  test('code many promise turns and nextTicks after a timer reads that timer\'s time, and a timer it sets for now fires before a later one', async () => {
    const clock = new VirtualClock()
    const seen: Array<[string, number]> = []
    clock.setTimer(10, () => {
      void turns(DEEP).then(() =>
        process.nextTick(async () => {
          await turns(DEEP)
          seen.push(['deep after 10', clock.now()])
          clock.setTimer(0, () => seen.push(['set for now at 10', clock.now()]))
        }),
      )
    })
    clock.setTimer(20, () => seen.push(['timer at 20', clock.now()]))
    await clock.advance(30)
    expect(seen).toEqual([
      ['deep after 10', 10],
      ['set for now at 10', 10],
      ['timer at 20', 20],
    ])
    expect(clock.now()).toBe(30)
  })

  test('retries with backoff, per-try timeouts and a delayed fault happen at the times computed by hand', async () => {
    const clock = new VirtualClock()
    const config: RetryConfig = {attempts: 3, on: ['5xx'], backoff: {baseMs: 100, maxMs: 1000}, budget: {ratio: 1, minPerSecond: 10}}
    const faults = new FaultSet(clock)
    faults.add({service: 'api', kind: 'delay', delayMs: 50})
    const events: Array<[string, number]> = []
    // The instance: each try's answer is decided DEEP promise turns after the try reaches it.
    const script: Array<(ctx: CallContext) => Promise<MeshResponse>> = [
      async () => ({status: 503, headers: [], body: null}),
      // Never answers: the per-try timeout ends this try.
      (ctx) => new Promise((_, reject) => ctx.signal.addEventListener('abort', () => {
        events.push(['try 2 aborted', clock.now()])
        reject(ctx.signal.reason)
      })),
      async () => {
        await clock.sleep(20)
        await turns(DEEP)
        events.push(['try 3 answers', clock.now()])
        return {status: 200, headers: [], body: null}
      },
    ]
    let tries = 0
    const instance: AsyncService = async (_req, ctx) => {
      const n = ++tries
      events.push([`try ${n} reaches the instance`, clock.now()])
      await turns(DEEP)
      events.push([`try ${n} is ${DEEP} turns deep`, clock.now()])
      return script[n - 1](ctx)
    }
    const stack = viaPromises((inner) =>
      retry(config, {budget: new RetryBudget(config.budget, clock), random: half})(
        timeout({service: 'api', timeoutMs: 300, which: 'per-try'})(fault('callee', {faults, allowHeaders: () => false})(inner)),
      ),
    )(instance)

    const ctx = callContext(clock)
    const answer = stack(meshRequest(), ctx).then(
      (r) => events.push([`answered ${r.status}`, clock.now()]),
      (e: ProxyError) => events.push([`failed ${e.status}`, clock.now()]),
    )
    await clock.advance(2_000)
    await answer

    // By hand. Backoff after try n is half of min(1000, 100·2^(n-1)): 50, then 100.
    // try 1 starts at 0; the fault's 50 ms delay   → instance at 50, 503 at once   → backoff 50
    // try 2 starts at 100; delay                   → instance at 150, hangs; the per-try deadline (100+300) cuts it at 400 → backoff 100
    // try 3 starts at 500; delay                   → instance at 550, works 20 ms → 200 at 570
    expect(events).toEqual([
      ['try 1 reaches the instance', 50],
      [`try 1 is ${DEEP} turns deep`, 50],
      ['try 2 reaches the instance', 150],
      [`try 2 is ${DEEP} turns deep`, 150],
      ['try 2 aborted', 400],
      ['try 3 reaches the instance', 550],
      [`try 3 is ${DEEP} turns deep`, 550],
      ['try 3 answers', 570],
      ['answered 200', 570],
    ])
    expect(ctx.decision.attempts).toBe(3)
    expect(clock.pending()).toBe(0)
  })
})
