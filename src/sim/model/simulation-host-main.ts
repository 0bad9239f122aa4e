// A simulation host: one Node process running many simulated instances, each on its own
// listening socket with its own log file, started and signalled by the hosted driver
// (supervisor/hosted-driver.ts) over IPC. What a process of its own would do on a signal is
// emulated at the instance's boundary: SIGKILL resets its sockets, SIGSTOP freezes it.
//   node <repo>/dist/sim/model/simulation-host-main.js   (forked with an IPC channel)

import {appendFileSync} from 'node:fs'
import type {Socket} from 'node:net'
import type http from 'node:http'
import {MeshError} from '../errors.js'
import {realClock, sleepOn, type Clock, type Timer} from '../time/clock.js'
import type {HostCommand, HostReport} from '../supervisor/host-protocol.js'
import {simulatedInstance, WARM_WITHIN_MS, type SimulatedInstance} from './simulated-instance.js'
import {DeadlineHeap} from '../time/deadline-queue.js'
import {preciseWake} from '../time/precise-wake.js'

if (!process.send) {
  process.stderr.write('simulation host: start it through the mesh (it takes its instances over an IPC channel).\n')
  process.exit(2)
}

function report(message: HostReport): void {
  process.send?.(message)
}

/**
 * The real clock, except that a timer coming due while the instance is paused fires on resume
 * (as a SIGSTOPped process's timers fire on SIGCONT), and none fires once it is killed.
 */
class HoldableClock implements Clock {
  private held: Array<() => void> = []
  private readonly live = new Set<Timer>()
  paused = false
  dead = false

  now(): number {
    return realClock.now()
  }
  wallNow(): number {
    return realClock.wallNow()
  }
  wallAt(monotonicMs: number): number {
    return realClock.wallAt(monotonicMs)
  }
  setTimer(ms: number, fn: () => void): Timer {
    const timer: Timer = realClock.setTimer(ms, () => {
      this.live.delete(timer)
      if (this.dead) return
      if (this.paused) this.held.push(fn)
      else fn()
    })
    this.live.add(timer)
    return {cancel: () => (timer.cancel(), this.live.delete(timer))}
  }
  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return sleepOn(this, ms, signal)
  }
  /** Runs what came due while paused, in the order it came due. */
  resume(): void {
    this.paused = false
    const due = this.held
    this.held = []
    for (const fn of due) fn()
  }
  kill(): void {
    this.dead = true
    this.held = []
    for (const timer of this.live) timer.cancel()
    this.live.clear()
  }
}

/**
 * Every instance's latencies sleep on one heap over the host's one precise wake (sub-millisecond,
 * as in a process of its own). A paused instance's sleeps still end, but what they lead to — its
 * answer — waits at its gate (HostedInstance.hold) until it resumes, so callers see it frozen.
 */
const sleeps = new DeadlineHeap(realClock, preciseWake(realClock))

class HostedInstance {
  private readonly clock = new HoldableClock()
  private readonly sockets = new Set<Socket>()
  /** Requests and answers that arrived while paused, run on resume. */
  private held: Array<() => void> = []
  private made?: SimulatedInstance
  private ended = false
  private stopping = false
  private initTimer?: Timer

  constructor(
    readonly name: string,
    private readonly logFile: string,
  ) {}

  start(env: Record<string, string>): void {
    try {
      this.made = simulatedInstance(env, this.clock, sleeps)
    } catch (error) {
      if (!(error instanceof MeshError)) throw error
      this.log(`simulated service: ${error.message}`, ...error.hints.map((h) => `  ${h}`))
      return this.end(2, null)
    }
    const {port, label, sim, initMs, warnings} = this.made
    this.log(...warnings)
    this.hold(sim.server)
    sim.server.on('connection', (socket: Socket) => {
      this.sockets.add(socket)
      socket.once('close', () => this.sockets.delete(socket))
      // A paused process's kernel still accepts the connection; nothing reads from it.
      if (this.clock.paused) socket.pause()
    })
    sim.server.on('error', (error: NodeJS.ErrnoException) => {
      this.log(`simulated service: ${label} cannot listen on 127.0.0.1:${port}: ${error.code ?? error.message}`)
      this.made?.sim.destroy()
      this.end(1, null)
    })
    const listen = () => {
      // Stopped or killed while it warmed up: it never listens.
      if (this.ended || this.stopping) return
      sim.server.listen(port, '127.0.0.1', () => {
        const address = sim.server.address()
        const actual = typeof address === 'object' && address ? address.port : port
        this.log(`${label} listening on 127.0.0.1:${actual} (simulation host pid ${process.pid})`)
      })
    }
    // Its dependencies' connections open during the init phase and before it listens, as in a process of its own.
    const warm = sim.warm(WARM_WITHIN_MS)
    const ready = () => void warm.then(listen)
    if (initMs > 0) {
      this.log(`${label} init phase: ${Math.round(initMs)} ms (simulate.coldStart)`)
      this.initTimer = this.clock.setTimer(initMs, ready)
    } else {
      ready()
    }
  }

  stop(graceMs: number): void {
    if (!this.made) return this.end(0, null)
    this.stopping = true
    this.log(`${this.made.label} received SIGTERM; finishing in-flight requests`)
    this.initTimer?.cancel()
    // A paused instance finishes nothing: like a stopped process, only the kill ends it.
    const force = realClock.setTimer(graceMs, () => this.kill())
    void this.made.sim.close().then(() => {
      force.cancel()
      this.clock.kill()
      this.end(0, null)
    })
  }

  kill(): void {
    this.clock.kill()
    this.held = []
    this.made?.sim.destroy()
    for (const socket of this.sockets) socket.destroy()
    this.end(null, 'SIGKILL')
  }

  pause(): void {
    this.clock.paused = true
    for (const socket of this.sockets) socket.pause()
  }

  resume(): void {
    this.clock.resume()
    for (const socket of this.sockets) socket.resume()
    const held = this.held
    this.held = []
    for (const fn of held) fn()
  }

  /**
   * Requests and the end of answers go through a gate closed while paused: an answer whose
   * downstream call returned during the pause is sent on resume, as the frozen process would.
   */
  private hold(server: http.Server): void {
    const handlers = server.listeners('request') as Array<(req: http.IncomingMessage, res: http.ServerResponse) => void>
    server.removeAllListeners('request')
    const gate = (fn: () => void) => (this.clock.paused ? this.held.push(fn) : fn())
    server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
      const end = res.end.bind(res) as (...args: unknown[]) => http.ServerResponse
      res.end = ((...args: unknown[]) => (gate(() => void end(...args)), res)) as typeof res.end
      gate(() => handlers.forEach((handler) => handler(req, res)))
    })
  }

  private end(code: number | null, signal: string | null): void {
    if (this.ended) return
    this.ended = true
    instances.delete(this.name)
    report({op: 'exit', instance: this.name, code, signal})
  }

  private log(...lines: string[]): void {
    if (lines.length === 0) return
    try {
      appendFileSync(this.logFile, lines.map((l) => `${l}\n`).join(''))
    } catch {
      // The log is for the developer; an unwritable one must not take the host (and its neighbours) down.
    }
  }
}

const instances = new Map<string, HostedInstance>()

process.on('message', (command: HostCommand) => {
  if (command.op === 'start') {
    // A start for a name still running would be the driver's bug; the old one is killed, never leaked.
    instances.get(command.instance)?.kill()
    const inst = new HostedInstance(command.instance, command.logFile)
    instances.set(command.instance, inst)
    inst.start(command.env)
    return
  }
  const inst = instances.get(command.instance)
  if (!inst) {
    // Already ended: its exit was reported, or is on its way.
    return
  }
  if (command.op === 'stop') inst.stop(command.graceMs)
  else if (command.op === 'kill') inst.kill()
  else if (command.op === 'pause') inst.pause()
  else inst.resume()
})

// The daemon is gone (even SIGKILLed): its sidecars with it, so nothing can reach these instances.
process.on('disconnect', () => process.exit(0))
process.on('SIGTERM', () => process.exit(0))
process.on('SIGINT', () => process.exit(0))
