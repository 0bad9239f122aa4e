// Plays a chaos scenario: each timeline step at its time through the control API,
// load (optional) for the whole run, then a report cut into phases at the step
// times and the expectations judged on it. Clock, client and load are handed in,
// so a 40-second scenario is a millisecond test.
//
//   clock ──at(step)──▶ client.injectFault / clearFaults ──▶ steps[]
//   runLoad ──onResponse(intended time)──▶ phase i ──▶ requests, errors by cause, percentiles
//   end ──▶ clear what the run injected ──▶ expectations ──▶ passed?
import {type LoadOptions, type LoadResult, type RequestOutcome, runLoad} from '../load/load-generator.js'
import {LatencyHistogram, type LatencySummary} from '../telemetry/histogram.js'
import type {Clock} from '../time/clock.js'
import type {ChaosScenario, ChaosStep, ClearTarget, Comparison, Expectation, Metric} from './chaos-scenario.js'
import {describeFault, type FaultInfo, type FaultSpec} from './fault.js'

/** The part of the control client a run needs. */
export interface ChaosClient {
  injectFault(spec: FaultSpec): Promise<FaultInfo>
  clearFaults(selector: {id?: string; service?: string}): Promise<FaultInfo[]>
}

export interface ChaosRunOptions {
  client: ChaosClient
  clock: Clock
  /** Where load goes (the scenario's load target, resolved by the caller). Needed when the scenario has load. */
  target?: {origin: string; path: string; caFile?: string}
  /** runLoad, or a stand-in for tests. */
  load?: (options: LoadOptions) => Promise<LoadResult>
  signal?: AbortSignal
  /** Each step as it happens. */
  onStep?: (step: StepResult) => void
}

export interface StepResult {
  /** When it was due, from the start. */
  atMs: number
  /** When the mesh confirmed it (the control call returned): where its phase begins. */
  doneAtMs: number
  name?: string
  action: 'inject' | 'clear'
  /** 'delay 500ms on payments', 'clear slow-payments'. */
  description: string
  ok: boolean
  faultId?: string
  /** kill / pause: the instances it acted on; clear: the fault ids removed. */
  instances?: string[]
  removed?: string[]
  error?: string
}

/** As `mesh load` and `mesh stat` give them: percentiles within 1/128 of the sample (LatencyHistogram), max and mean exact. */
export interface PhaseReport {
  /** 1-based; 0 for the whole run. */
  index: number
  /** What began the phase: 'start', or the steps at its start time. */
  label: string
  startMs: number
  endMs: number
  requests: number
  errors: number
  successRate: number
  errorsByCause: Record<string, number>
  statuses: Record<string, number>
  latency: LatencySummary
}

export interface ExpectationResult {
  text: string
  phase: number | 'overall'
  held: boolean
  /** The measured value (ratio, ms, or count); undefined when nothing was measured. */
  actual?: number
  /** Why it failed, when it did. */
  reason?: string
}

export interface ChaosReport {
  file: string
  durationMs: number
  /** Requests sent and completed (all phases together). */
  sent: number
  completed: number
  /** Requests due while the load's in-flight cap (load.concurrency) was reached: never sent, in no phase. */
  dropped: number
  /** That cap, when the load had one. */
  concurrency?: number
  /** Requests due while a step was taking effect: in the whole run, in no phase. */
  transition: number
  steps: StepResult[]
  phases: PhaseReport[]
  overall: PhaseReport
  expectations: ExpectationResult[]
  /** Every step went through. */
  stepsOk: boolean
  /** Every step went through and every expectation held. */
  passed: boolean
  aborted: boolean
}

export async function runChaos(scenario: ChaosScenario, options: ChaosRunOptions): Promise<ChaosReport> {
  const {client, clock, signal} = options
  if (scenario.load && !options.target) throw new Error('runChaos: the scenario drives load but no target was given')
  const t0 = clock.now()
  const steps: StepResult[] = []
  const injected = new Map<string, string>() // step name (or a generated key) → fault id
  const ours: string[] = []
  const outcomes: RequestOutcome[] = []

  // Steps run one after another, in time order: a clear at the same time as its inject finds its id.
  let chain: Promise<void> = Promise.resolve()
  const timers = scenario.timeline.map((step) =>
    clock.setTimer(step.atMs, () => {
      chain = chain.then(() => play(step))
    }),
  )

  async function play(step: ChaosStep): Promise<void> {
    if (signal?.aborted) return
    let result: StepResult
    if (step.action === 'inject') {
      const description = `${describeFault(step.fault)} on ${step.fault.version ? `${step.fault.service}@${step.fault.version}` : step.fault.service}`
      try {
        const info = await client.injectFault(step.fault)
        ours.push(info.id)
        if (step.name) injected.set(step.name, info.id)
        result = {atMs: step.atMs, doneAtMs: clock.now() - t0, name: step.name, action: 'inject', description, ok: true, faultId: info.id, instances: info.instances}
      } catch (error) {
        result = {atMs: step.atMs, doneAtMs: clock.now() - t0, name: step.name, action: 'inject', description, ok: false, error: messageOf(error)}
      }
    } else {
      const c = step.clear
      const description = clearLabel(c)
      try {
        let removed: FaultInfo[]
        if ('step' in c) {
          const id = injected.get(c.step)
          if (!id) throw new Error(`step "${c.step}" injected no fault`)
          removed = await client.clearFaults({id})
        } else removed = await client.clearFaults('service' in c ? {service: c.service} : {})
        result = {atMs: step.atMs, doneAtMs: clock.now() - t0, name: step.name, action: 'clear', description, ok: true, removed: removed.map((f) => f.id)}
      } catch (error) {
        result = {atMs: step.atMs, doneAtMs: clock.now() - t0, name: step.name, action: 'clear', description, ok: false, error: messageOf(error)}
      }
    }
    steps.push(result)
    options.onStep?.(result)
  }

  let loadResult: LoadResult | undefined
  let aborted = false
  try {
    if (scenario.load) {
      const l = scenario.load
      loadResult = await (options.load ?? runLoad)({
        target: options.target!.origin,
        caFile: options.target!.caFile,
        path: options.target!.path,
        method: l.method,
        headers: l.headers,
        shape: l.shape,
        seed: l.seed,
        concurrency: l.concurrency,
        timeoutMs: l.timeoutMs,
        clock,
        signal,
        onResponse: (o) => outcomes.push(o),
      })
      aborted = loadResult.aborted
    }
    // The run lasts its duration even when the load (or no load) finished first: late steps still play.
    const left = scenario.durationMs - (clock.now() - t0)
    if (left > 0 && !signal?.aborted) await clock.sleep(left, signal).catch(() => undefined)
    aborted ||= signal?.aborted ?? false
  } finally {
    for (const t of timers) t.cancel()
    await chain
    // Leave the mesh as we found it: whatever this run injected and is still active goes.
    for (const id of ours) await client.clearFaults({id}).catch(() => undefined)
  }

  // A phase runs from when its steps took effect (the control calls returned) to when
  // the next steps were due. A request due in between met the mesh mid-change: it
  // counts in the whole run only, so a boundary race cannot fail a phase's expectation.
  const due = scenario.phaseStarts
  const starts = due.map((at) => {
    const done = steps.filter((st) => st.atMs === at).map((st) => st.doneAtMs)
    return at === 0 || done.length === 0 ? at : Math.min(scenario.durationMs, Math.max(at, ...done))
  })
  const ends = due.map((_, i) => due[i + 1] ?? scenario.durationMs)
  const labels = due.map((s, i) => (i === 0 && !scenario.timeline.some((st) => st.atMs === 0) ? 'start' : labelAt(scenario.timeline, s)))
  const buckets: RequestOutcome[][] = starts.map(() => [])
  let transition = 0
  for (const o of outcomes) {
    const i = phaseOf(starts, ends, o.intendedMs - t0)
    if (i === -1) transition++
    else buckets[i].push(o)
  }
  const phases = starts.map((start, i) => summarize(i + 1, labels[i], start, ends[i], buckets[i]))
  const overall = summarize(0, 'whole run', 0, scenario.durationMs, outcomes)
  const expectations = scenario.expect.map((e) => judge(e, e.phase === 'overall' ? overall : phases[e.phase - 1]))
  const stepsOk = steps.length === scenario.timeline.length && steps.every((s) => s.ok)
  return {
    file: scenario.file,
    durationMs: scenario.durationMs,
    sent: loadResult?.sent ?? 0,
    dropped: loadResult?.dropped ?? 0,
    ...(loadResult && Number.isFinite(loadResult.concurrency) ? {concurrency: loadResult.concurrency} : {}),
    completed: outcomes.length,
    transition,
    steps,
    phases,
    overall,
    expectations,
    stepsOk,
    passed: stepsOk && !aborted && expectations.every((e) => e.held),
    aborted,
  }
}

/** The phase (0-based) a request due at `ms` from the start belongs to; -1 while a step was taking effect. */
export function phaseOf(starts: readonly number[], ends: readonly number[], ms: number): number {
  for (let i = 0; i < starts.length; i++) if (ms >= starts[i] && (ms < ends[i] || i === starts.length - 1)) return i
  return -1
}

function clearLabel(c: ClearTarget): string {
  return 'all' in c ? 'clear all faults' : 'service' in c ? `clear faults on ${c.service}` : `clear ${c.step}`
}

function labelAt(timeline: ChaosStep[], atMs: number): string {
  return timeline
    .filter((s) => s.atMs === atMs)
    .map((s) => s.name ?? (s.action === 'inject' ? `${describeFault(s.fault)} on ${s.fault.service}` : clearLabel(s.clear)))
    .join(' + ')
}

export function summarize(index: number, label: string, startMs: number, endMs: number, outcomes: RequestOutcome[]): PhaseReport {
  const errorsByCause: Record<string, number> = {}
  const statuses: Record<string, number> = {}
  const latency = new LatencyHistogram()
  let errors = 0
  for (const o of outcomes) {
    latency.record(o.latencyMs)
    if (o.status > 0) statuses[o.status] = (statuses[o.status] ?? 0) + 1
    if (o.error === undefined) continue
    errors++
    errorsByCause[o.error] = (errorsByCause[o.error] ?? 0) + 1
  }
  return {
    index,
    label,
    startMs,
    endMs,
    requests: outcomes.length,
    errors,
    successRate: outcomes.length ? (outcomes.length - errors) / outcomes.length : 0,
    errorsByCause,
    statuses,
    latency: latency.summary(),
  }
}

export function judge(e: Expectation, phase: PhaseReport | undefined): ExpectationResult {
  const base = {text: e.text, phase: e.phase}
  if (!phase) return {...base, held: false, reason: `phase ${e.phase} does not exist`}
  const counts = e.metric === 'requests' || e.metric === 'errors'
  if (phase.requests === 0 && !counts) {
    return {...base, held: false, reason: `no request completed in ${e.phase === 'overall' ? 'the run' : `phase ${e.phase}`}, so ${e.metric} was not measured`}
  }
  const actual = measure(e.metric, phase)
  const held = compare(actual, e.op, e.value)
  return held ? {...base, held, actual} : {...base, held, actual, reason: `${e.metric} was ${formatMetric(e.metric, actual)}`}
}

function measure(metric: Metric, p: PhaseReport): number {
  switch (metric) {
    case 'successRate':
      return p.successRate
    case 'errorRate':
      return 1 - p.successRate
    case 'requests':
      return p.requests
    case 'errors':
      return p.errors
    default:
      return p.latency[metric]
  }
}

function compare(a: number, op: Comparison, b: number): boolean {
  // Rates are compared at a hair of tolerance, so 99% of 1000 is not failed by float error.
  const eps = 1e-9
  switch (op) {
    case '>=':
      return a >= b - eps
    case '<=':
      return a <= b + eps
    case '>':
      return a > b
    case '<':
      return a < b
    case '==':
      return Math.abs(a - b) <= eps
  }
}

/** 0.995 → '99.50%', 812.3 → '812ms', 42 → '42'. */
export function formatMetric(metric: Metric, v: number): string {
  if (metric === 'successRate' || metric === 'errorRate') return `${(v * 100).toFixed(2)}%`
  if (metric === 'requests' || metric === 'errors') return String(v)
  return v >= 1000 ? `${(v / 1000).toFixed(2)}s` : `${Math.round(v)}ms`
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}
