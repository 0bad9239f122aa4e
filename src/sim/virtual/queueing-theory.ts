// The ground truth `mesh sim` is checked against (issue #24, fidelity): M/M/c — Poisson
// arrivals at rate λ, exponential service of mean 1/μ, c servers, one FIFO queue.
//
//   a = λ/μ (offered load, Erlangs)    ρ = a/c (utilisation; stable only below 1)
//   C(c, a) = P(an arrival waits)      Erlang C, through the Erlang B recursion:
//       B(0) = 1,  B(k) = a·B(k−1) / (k + a·B(k−1)),  C = c·B(c) / (c − a·(1 − B(c)))
//   P(Wq > t) = C·e^(−(cμ − λ)·t)       so  E[Wq] = C / (cμ − λ)
//                                       and the q-quantile of Wq is ln(C / (1 − q)) / (cμ − λ), or 0 when C ≤ 1 − q
//   P(W > t), W = Wq + service (Gross & Harris):
//       e^(−μt)·[1 + C·(1 − e^(−μt(c−1−a))) / (c−1−a)]    (c−1−a = 0: e^(−μt)·(1 + C·μt))
//   Little's law: L = λ·W (in the system), Lq = λ·Wq (in the queue)
//
// Pure functions of numbers; times in milliseconds, rates per millisecond.

/** P(an arrival waits) in M/M/c: Erlang's C formula. 1 when the queue is unstable (a ≥ c). */
export function erlangC(servers: number, offeredLoad: number): number {
  if (!Number.isInteger(servers) || servers < 1) throw new RangeError(`servers must be a positive integer, got ${servers}`)
  if (!(offeredLoad >= 0) || !Number.isFinite(offeredLoad)) throw new RangeError(`offered load must be finite and >= 0, got ${offeredLoad}`)
  if (offeredLoad >= servers) return 1
  // Erlang B's recursion stays within [0, 1]: no factorials or powers to overflow at c = 1000.
  let b = 1
  for (let k = 1; k <= servers; k++) b = (offeredLoad * b) / (k + offeredLoad * b)
  return (servers * b) / (servers - offeredLoad * (1 - b))
}

export interface MMc {
  /** λ: arrivals per millisecond. */
  arrivalRatePerMs: number
  /** 1/μ: mean service time, milliseconds. */
  meanServiceMs: number
  /** c */
  servers: number
}

export interface MMcMetrics {
  /** ρ = λ / (cμ). */
  utilisation: number
  stable: boolean
  /** C: P(wait > 0). */
  waitProbability: number
  /** E[Wq]: mean time in the queue, ms (Infinity when unstable). */
  meanWaitMs: number
  /** E[W] = E[Wq] + 1/μ: mean time in the system, ms. */
  meanSojournMs: number
  /** Lq = λ·E[Wq]: mean number queued. */
  meanQueued: number
  /** L = λ·E[W]: mean number in the system. */
  meanInSystem: number
  /** P(Wq > t). */
  waitExceeds(ms: number): number
  /** The q-quantile of the waiting time (0 when at least a fraction q does not wait). */
  waitQuantileMs(q: number): number
  /** P(W > t): time in the system, waiting and served (a response time with no network). */
  sojournExceeds(ms: number): number
  /** The q-quantile of the time in the system. */
  sojournQuantileMs(q: number): number
}

export function mmc({arrivalRatePerMs: lambda, meanServiceMs, servers}: MMc): MMcMetrics {
  if (!(lambda >= 0) || !Number.isFinite(lambda)) throw new RangeError(`arrival rate must be finite and >= 0, got ${lambda}`)
  if (!(meanServiceMs > 0) || !Number.isFinite(meanServiceMs)) throw new RangeError(`mean service time must be finite and > 0, got ${meanServiceMs}`)
  const mu = 1 / meanServiceMs
  const offered = lambda * meanServiceMs
  const utilisation = offered / servers
  const stable = utilisation < 1
  const c = erlangC(servers, offered)
  // The rate at which the queue's tail decays: the spare service capacity.
  const decay = servers * mu - lambda
  const meanWaitMs = stable ? c / decay : Infinity
  const meanSojournMs = meanWaitMs + meanServiceMs
  return {
    utilisation,
    stable,
    waitProbability: c,
    meanWaitMs,
    meanSojournMs,
    meanQueued: littleL(lambda, meanWaitMs),
    meanInSystem: littleL(lambda, meanSojournMs),
    waitExceeds: (ms) => (!stable ? 1 : ms < 0 ? 1 : c * Math.exp(-decay * ms)),
    waitQuantileMs(q) {
      checkQuantile(q)
      if (!stable) return Infinity
      return c <= 1 - q ? 0 : Math.log(c / (1 - q)) / decay
    },
    sojournExceeds,
    sojournQuantileMs(q) {
      checkQuantile(q)
      if (!stable) return Infinity
      // P(W > t) falls from 1 to 0 monotonically: bracket, then bisect to a relative 1e-12.
      let lo = 0
      let hi = meanSojournMs
      while (sojournExceeds(hi) > 1 - q) hi *= 2
      while (hi - lo > 1e-12 * hi) {
        const mid = (lo + hi) / 2
        if (sojournExceeds(mid) > 1 - q) lo = mid
        else hi = mid
      }
      return (lo + hi) / 2
    },
  }

  function sojournExceeds(ms: number): number {
    if (!stable) return 1
    if (ms <= 0) return 1
    const k = servers - 1 - offered
    const tail = Math.abs(k) < 1e-12 ? c * mu * ms : (c * (1 - Math.exp(-mu * ms * k))) / k
    return Math.exp(-mu * ms) * (1 + tail)
  }
}

function checkQuantile(q: number): void {
  if (!(q >= 0 && q < 1)) throw new RangeError(`a quantile is in [0, 1), got ${q}`)
}

/** Little's law: the mean number in a system is its arrival rate times the mean time spent in it. */
export function littleL(arrivalRatePerMs: number, meanTimeMs: number): number {
  return arrivalRatePerMs === 0 ? 0 : arrivalRatePerMs * meanTimeMs
}

/** Little's law the other way round: the mean time in a system from the mean number in it. */
export function littleW(arrivalRatePerMs: number, meanInSystem: number): number {
  return meanInSystem / arrivalRatePerMs
}
