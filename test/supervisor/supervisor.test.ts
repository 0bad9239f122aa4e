import {once} from 'node:events'
import {mkdtempSync, readFileSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import {join} from 'node:path'
import {afterEach, beforeEach, describe, expect, it} from 'vitest'
import {MeshError} from '../../src/sim/errors.js'
import {VirtualClock} from '../../src/sim/time/clock.js'
import {signalGroup} from '../../src/sim/supervisor/process-group.js'
import {comm, groupAlive, groupMembers, isRunning, startTimeOf, table} from './processes.js'
import {Supervisor, type InstanceSpec, type ProcessStatus} from '../../src/sim/supervisor/supervisor.js'
import {waitUntil} from './wait-until.js'

let dir: string
let supervisors: Supervisor[]
let pgids: Set<number>

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'meshsim-supervisor-'))
  supervisors = []
  pgids = new Set()
})

afterEach(async () => {
  await Promise.all(supervisors.map((s) => s.stopAll()))
  // Belt and braces: no test leaves a process behind, even one that failed halfway.
  for (const pgid of pgids) signalGroup(pgid, 'SIGKILL')
  rmSync(dir, {recursive: true, force: true})
})

function supervisor(opts?: ConstructorParameters<typeof Supervisor>[0]): Supervisor {
  const s = new Supervisor(opts)
  s.on('spawn', (status: ProcessStatus) => pgids.add(status.pgid!))
  supervisors.push(s)
  return s
}

function spec(command: string, overrides: Partial<InstanceSpec> = {}): InstanceSpec {
  return {
    instance: 'catalog-v1-0',
    service: 'catalog',
    version: 'v1',
    command,
    cwd: dir,
    env: {},
    logFile: join(dir, 'logs', 'catalog-v1-0.log'),
    graceMs: 2000,
    ...overrides,
  }
}

function log(s: InstanceSpec): string {
  try {
    return readFileSync(s.logFile, 'utf8')
  } catch {
    return ''
  }
}

// Real processes: generous bounds for a loaded CI machine; every wait is on an event or a polled condition.
describe('Supervisor', {timeout: 20_000}, () => {
  it('starts a process in its own group, records it, and sends its output to the log file', async () => {
    const sup = supervisor()
    const s = spec('echo "to stdout $GREETING"; echo to stderr >&2; exec sleep 30', {env: {GREETING: 'hello'}})
    const recorded = once(sup, 'records')
    const status = sup.start(s)

    expect(status.state).toBe('running')
    expect(status.pgid).toBe(status.pid)
    expect(table.readSync().get(status.pid!)?.pgid).toBe(status.pid)
    // The start time comes from the process table a moment later.
    await recorded
    expect(sup.records()).toEqual([{instance: 'catalog-v1-0', pid: status.pid, pgid: status.pid, startTime: startTimeOf(status.pid!)}])
    await waitUntil('both streams in the log', () => log(s).includes('to stdout hello') && log(s).includes('to stderr'))
    expect(log(s)).toContain(`[mesh] started pid ${status.pid}`)

    await sup.stop('catalog-v1-0')
    expect(sup.status('catalog-v1-0')?.state).toBe('stopped')
    expect(sup.records()).toEqual([])
    expect(log(s)).toMatch(/\[mesh\] stopping.*\n(.*\n)*\[mesh\] exited code - signal SIGTERM\n(.*\n)*\[mesh\] stopped\n$/)
  })

  it('restarts a child that exits 1 with doubling delays, counts restarts and calls it a crash loop', async () => {
    const sup = supervisor({backoff: {initialMs: 50, maxMs: 200, resetAfterMs: 10_000}})
    const delays: number[] = []
    const states: string[] = []
    sup.on('restart-scheduled', (status: ProcessStatus, delayMs: number) => {
      delays.push(delayMs)
      states.push(status.state)
    })
    const exits: unknown[] = []
    // Stopped from the fifth exit itself (the fourth restart's), before a fifth restart can
    // be scheduled: polling for it raced with that restart, whose child stop() then SIGTERMed.
    const stopped = new Promise<void>((resolve) => {
      sup.on('exit', (_status, exit) => {
        exits.push(exit)
        if (exits.length === 5) void sup.stop('catalog-v1-0').then(resolve)
      })
    })
    const s = spec('exit 1')
    sup.start(s)
    await stopped

    const status = sup.status('catalog-v1-0')!
    expect(status.state).toBe('stopped')
    expect(status.lastExit).toMatchObject({code: 1, signal: null})
    expect(status.restarts).toBe(4)
    expect(delays).toEqual([50, 100, 200, 200])
    expect(states).toEqual(['backoff', 'backoff', 'crash-loop', 'crash-loop'])
    expect(exits[0]).toEqual({code: 1, signal: null})
    const text = log(s)
    expect(text).toContain('[mesh] exited code 1 signal -\n')
    expect(text).toContain('[mesh] restarting in 50ms (restart 1)\n')
    expect(text).toContain('[mesh] restarting in 100ms (restart 2)\n')
    expect(text).toContain('[mesh] crash loop: 3 crashes in a row\n')
  })

  it('leaves a restart: no process exited, whatever its exit code, and stops it as not running', async () => {
    const sup = supervisor({backoff: {initialMs: 50, maxMs: 200, resetAfterMs: 10_000}})
    let scheduled = 0
    sup.on('restart-scheduled', () => scheduled++)
    const failed = spec('echo migrating; exit 3', {restart: 'no'})
    const exit = once(sup, 'exit')
    sup.start(failed)
    const [status] = (await exit) as [ProcessStatus]
    // The state is settled when 'exit' is emitted: listeners tell a finished job from a crash by it.
    expect(status).toMatchObject({state: 'exited', restarts: 0, lastExit: {code: 3, signal: null}})
    expect(status.nextRestartAtMs).toBeUndefined()
    expect(log(failed)).toContain('[mesh] not restarted (restart: no)\n')

    const ok = spec('exit 0', {instance: 'seed-v1-0', restart: 'no', logFile: join(dir, 'logs', 'seed-v1-0.log')})
    const exit2 = once(sup, 'exit')
    sup.start(ok)
    expect(((await exit2) as [ProcessStatus])[0].state).toBe('exited')
    expect(log(ok)).toContain('[mesh] completed; not restarted\n')
    expect(scheduled).toBe(0)
    await sup.stop('catalog-v1-0')
    expect(sup.status('catalog-v1-0')?.state).toBe('stopped')
  })

  it('restarts a restart: on-failure process after a failure, and leaves it exited once it exits 0', async () => {
    const sup = supervisor({backoff: {initialMs: 50, maxMs: 200, resetAfterMs: 10_000}})
    const states: string[] = []
    const done = new Promise<void>((resolve) =>
      sup.on('exit', (status: ProcessStatus) => {
        states.push(status.state)
        if (status.state === 'exited') resolve()
      }),
    )
    // Fails on its first run, succeeds on its second (a database not ready yet, then ready).
    const marker = join(dir, 'ran-once')
    sup.start(spec(`if [ -e ${marker} ]; then exit 0; fi; touch ${marker}; exit 1`, {restart: 'on-failure'}))
    await done
    const status = sup.status('catalog-v1-0')!
    // A crash is still 'running' when reported (the restart is scheduled after); a finish is already 'exited'.
    expect(states).toEqual(['running', 'exited'])
    expect(status).toMatchObject({state: 'exited', restarts: 1, lastExit: {code: 0, signal: null}})
  })

  it('stops restarting a restart: on-failure:N process after N restarts, and says why', async () => {
    const sup = supervisor({backoff: {initialMs: 20, maxMs: 40, resetAfterMs: 10_000}})
    const s = spec('echo failing; exit 4', {restart: 'on-failure', maxRestarts: 2})
    const exited = new Promise<ProcessStatus>((resolve) => sup.on('exit', (status: ProcessStatus) => status.state === 'exited' && resolve(status)))
    sup.start(s)
    const status = await exited
    expect(status).toMatchObject({state: 'exited', restarts: 2, lastExit: {code: 4}})
    expect(log(s)).toContain('[mesh] not restarted: 2 restarts spent (restart: on-failure:2)\n')
  })

  it('waits for the backoff on the injected clock before restarting', async () => {
    const clock = new VirtualClock()
    const sup = supervisor({clock})
    const spawned: number[] = []
    sup.on('spawn', () => spawned.push(clock.now()))
    const scheduled = once(sup, 'restart-scheduled')
    sup.start(spec('exit 3'))
    const [status, delayMs] = (await scheduled) as [ProcessStatus, number]

    expect(delayMs).toBe(1000)
    expect(status).toMatchObject({state: 'backoff', restarts: 0, nextRestartAtMs: 1000, lastExit: {code: 3}})
    await clock.advance(999)
    expect(spawned).toEqual([0])
    const second = once(sup, 'restart-scheduled')
    await clock.advance(1)
    expect(spawned).toEqual([0, 1000])
    expect(sup.status('catalog-v1-0')!.restarts).toBe(1)
    const [, secondDelay] = (await second) as [ProcessStatus, number]
    expect(secondDelay).toBe(2000)

    await sup.stop('catalog-v1-0') // in backoff: nothing to signal, the timer is cancelled
    expect(clock.pending()).toBe(0)
    expect(sup.status('catalog-v1-0')!.state).toBe('stopped')
  })

  it('stop() takes the whole group down, grandchildren included', async () => {
    const sup = supervisor()
    const status = sup.start(spec("sh -c 'sleep 30 & sleep 30'"))
    const sleeps = await waitUntil('two sleeps in the group', () => {
      const pids = groupMembers(status.pgid!).filter((pid) => comm(pid) === 'sleep')
      return pids.length === 2 && pids
    })

    await sup.stop('catalog-v1-0')

    expect(sleeps.filter(isRunning)).toEqual([])
    expect(groupAlive(status.pgid!)).toBe(false)
    expect(sup.status('catalog-v1-0')!.restarts).toBe(0)
  })

  it('SIGKILLs a child that ignores SIGTERM once graceMs has passed, and does not restart it', async () => {
    const sup = supervisor()
    const s = spec(`node -e "process.on('SIGTERM',()=>{}); console.log('ready'); setInterval(()=>{},1000)"`, {graceMs: 300})
    const status = sup.start(s)
    // On a line of its own: the `[mesh] started` line quotes the command, 'ready' included.
    await waitUntil('the SIGTERM handler installed', () => /^ready$/m.test(log(s)))
    const node = groupMembers(status.pgid!).find((pid) => comm(pid) === 'node')!
    expect(node).toBeDefined()

    const stopped = once(sup, 'stopped')
    await sup.stop('catalog-v1-0')
    const [, outcome] = await stopped

    expect(outcome).toBe('killed')
    expect(isRunning(node)).toBe(false)
    expect(sup.status('catalog-v1-0')).toMatchObject({state: 'stopped', restarts: 0})
    expect(log(s)).toContain('[mesh] still running after 300ms: sent SIGKILL')
  })

  it('kill() is a crash, not a stop: the instance comes back with backoff', async () => {
    const sup = supervisor({backoff: {initialMs: 50, maxMs: 50, resetAfterMs: 10_000}})
    const first = sup.start(spec('exec sleep 30'))
    const respawned = once(sup, 'spawn')
    await sup.signal('catalog-v1-0', 'SIGKILL')
    const [status] = (await respawned) as [ProcessStatus]

    expect(status.restarts).toBe(1)
    expect(status.pid).not.toBe(first.pid)
    // A new run: its id is new too (where a shared host's pid would not change).
    expect(first.runId).toBeGreaterThan(0)
    expect(status.runId).toBeGreaterThan(first.runId!)
    expect(status.lastExit).toMatchObject({code: null, signal: 'SIGKILL'})
    expect(isRunning(first.pid!)).toBe(false)
  })

  it('treats a start that fails (cwd missing) as a crash and logs why', async () => {
    const sup = supervisor({backoff: {initialMs: 50, maxMs: 50, resetAfterMs: 10_000}})
    const s = spec('echo never', {cwd: join(dir, 'no-such-dir')})
    const scheduled = once(sup, 'restart-scheduled')
    const started = sup.start(s)
    expect(started.pid).toBeUndefined()
    const [status] = (await scheduled) as [ProcessStatus]

    expect(status.state).toBe('backoff')
    expect(status.lastError).toMatch(/no-such-dir/)
    expect(log(s)).toMatch(/^\[mesh\] failed to start: /m)
    expect(log(s)).toMatch(/^\[mesh\] .*cwd.*no-such-dir/m)
    await waitUntil('a retried start', () => (sup.status('catalog-v1-0')!.restarts >= 1 ? true : undefined))
  })

  it('signals each group once when stop() is called twice, and stops all instances in parallel', async () => {
    const sup = supervisor()
    const a = spec('exec sleep 30', {instance: 'a', logFile: join(dir, 'a.log')})
    const b = spec('exec sleep 30', {instance: 'b', logFile: join(dir, 'b.log')})
    sup.start(a)
    sup.start(b)
    await Promise.all([sup.stop('a'), sup.stop('a'), sup.stopAll()])
    expect(sup.list().map((st) => st.state)).toEqual(['stopped', 'stopped'])
    expect(log(a).match(/\[mesh\] stopping/g)).toHaveLength(1)
    expect(log(b).match(/\[mesh\] stopping/g)).toHaveLength(1)
  })

  it('refuses to start an instance twice and names unknown instances', async () => {
    const sup = supervisor()
    sup.start(spec('exec sleep 30'))
    expect(() => sup.start(spec('exec sleep 30'))).toThrow(expect.objectContaining({code: 'MESH_INSTANCE_ALREADY_STARTED'}))
    await expect(sup.stop('nope')).rejects.toBeInstanceOf(MeshError)
    expect(() => sup.forget('catalog-v1-0')).toThrow(expect.objectContaining({code: 'MESH_INSTANCE_NOT_STOPPED'}))
    await sup.stop('catalog-v1-0')
    sup.forget('catalog-v1-0')
    expect(sup.list()).toEqual([])
  })

  it('a descendant that leaves the group is recorded, and goes with stop(); a crashed instance\'s one is killed with it', async () => {
    const sup = supervisor({backoff: {initialMs: 50, maxMs: 50, resetAfterMs: 10_000}})
    const escapedOf = (leader: number) => waitUntil('the setsid sleep', () => table.readSync().descendants(leader).find((d) => d.pgid !== leader))
    // A look already under way (the periodic one) may predate the sleep: look again until it is seen.
    const sampledWith = async (instance: string, pid: number) => {
      const deadline = performance.now() + 5000
      for (;;) {
        await sup.sampleDescendants()
        if (sup.records().find((r) => r.instance === instance)?.descendants?.some((d) => d.pid === pid)) return
        if (performance.now() > deadline) throw new Error(`pid ${pid} never recorded as a descendant of ${instance}`)
      }
    }
    const changed: number[] = []
    const catalog = spec('setsid sleep 41 & exec sleep 30')
    const recorded = once(sup, 'records')
    const status = sup.start(catalog)
    await recorded
    sup.on('records', () => changed.push(1))
    const escaped = await escapedOf(status.pid!)
    pgids.add(escaped.pid)
    await sampledWith('catalog-v1-0', escaped.pid)
    expect(sup.records()[0].descendants).toEqual([{pid: escaped.pid, startTime: escaped.startTime}])
    expect(changed).toHaveLength(1)
    await sup.stop('catalog-v1-0')
    expect(isRunning(escaped.pid)).toBe(false)
    expect(log(catalog)).toContain(`and ${escaped.pid} (left the group)`)

    const again = spec('setsid sleep 42 & exec sleep 30', {instance: 'cart-v1-0', logFile: join(dir, 'cart.log')})
    const first = sup.start(again)
    const orphan = await escapedOf(first.pid!)
    pgids.add(orphan.pid)
    await sampledWith('cart-v1-0', orphan.pid)
    // The leader dies: its recorded descendant is what is left of it, and would outlive the restart.
    const respawned = once(sup, 'spawn')
    process.kill(first.pid!, 'SIGKILL')
    await respawned
    await waitUntil('the orphan killed', () => !isRunning(orphan.pid))
    expect(log(again)).toMatch(/killing what is left of group \d+ and 1 process\(es\) that left it/)
  })
})
