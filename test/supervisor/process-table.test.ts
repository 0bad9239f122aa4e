import {spawn} from 'node:child_process'
import {once} from 'node:events'
import {existsSync} from 'node:fs'
import {describe, expect, it} from 'vitest'
import {coalesced, defaultProcessTableKind, parsePs, parseStat, processTable, ProcessSnapshot, type ProcessTableKind} from '../../src/sim/supervisor/process-table.js'

// Fields 3..22 of a real /proc/PID/stat line; field 22 (start time) is 8675309.
const TAIL = 'S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 8675309 1000000 200 18446744073709551615'

describe('parseStat', () => {
  it('reads pid, parent, group, state and start time (field 22) of a plain comm', () => {
    expect(parseStat(`4242 (node) ${TAIL}\n`)).toEqual({pid: 4242, ppid: 1, pgid: 4242, zombie: false, startTime: '8675309'})
    expect(parseStat(`4242 (node) Z${TAIL.slice(1)}`)?.zombie).toBe(true)
  })

  it('counts fields after the LAST parenthesis when comm has spaces and parentheses', () => {
    const stat = parseStat(`4242 (my (weird) ) name) ${TAIL}`)
    expect(stat?.startTime).toBe('8675309')
    expect(stat?.pgid).toBe(4242)
  })

  it('gives up on text that is not a stat line', () => {
    expect(parseStat('')).toBeUndefined()
    expect(parseStat('4242 (node) S 1 2')).toBeUndefined()
    expect(parseStat('garbage')).toBeUndefined()
  })
})

describe('parsePs', () => {
  // `ps -A -o pid=,ppid=,pgid=,stat=,lstart=` under TZ=UTC LC_ALL=C, as each prints it.
  const procps = [
    '    1     0     1 Ss   Sun Dec  6 21:54:41 2026',
    '  812     1   812 S<Ll Sun Dec  6 21:55:25 2026',
    '  813   812   812 Z    Mon Dec 14 09:05:00 2026',
  ].join('\n')
  const bsd = [
    '    1     0     1 Ss     Sun Dec  6 21:54:41 2026',
    '  812     1   812 S+     Sun Dec  6 21:55:25 2026',
    '  813   812   812 Z+     Mon Dec 14 09:05:00 2026',
    '',
  ].join('\n')

  it('reads the same entries from procps and BSD output, lstart as seconds since the epoch', () => {
    const expected = [
      {pid: 1, ppid: 0, pgid: 1, zombie: false, startTime: String(Date.UTC(2026, 11, 6, 21, 54, 41) / 1000)},
      {pid: 812, ppid: 1, pgid: 812, zombie: false, startTime: String(Date.UTC(2026, 11, 6, 21, 55, 25) / 1000)},
      {pid: 813, ppid: 812, pgid: 812, zombie: true, startTime: String(Date.UTC(2026, 11, 14, 9, 5, 0) / 1000)},
    ]
    expect(parsePs(procps)).toEqual(expected)
    expect(parsePs(bsd)).toEqual(expected)
  })

  it('skips lines that are not a process (a warning, a header, a bad month)', () => {
    expect(parsePs('Warning: bad ps syntax\n  PID  PPID  PGID STAT STARTED\n  5 1 5 S Sun Foo  6 21:55:25 2026\n')).toEqual([])
  })
})

describe('ProcessSnapshot', () => {
  const e = (pid: number, ppid: number, pgid: number, zombie = false) => ({pid, ppid, pgid, zombie, startTime: String(pid * 10)})
  // 10 leads its group; 11 is its child; 12 left the group (setsid) and started 13; 14 is a zombie child; 20 is unrelated.
  const snapshot = ProcessSnapshot.of([e(1, 0, 1), e(10, 1, 10), e(11, 10, 10), e(12, 11, 12), e(13, 12, 12), e(14, 10, 10, true), e(20, 1, 20)])

  it('finds every descendant through the parent chain, across groups, zombies left out', () => {
    expect(snapshot.descendants(10).map((d) => d.pid).sort()).toEqual([11, 12, 13])
    expect(snapshot.descendants(20)).toEqual([])
  })

  it('lists a group’s running members and tells a zombie from a running process', () => {
    expect(snapshot.groupMembers(10).sort()).toEqual([10, 11])
    expect(snapshot.isRunning(14)).toBe(false)
    expect(snapshot.isSame(14, '140')).toBe(true)
    expect(snapshot.isSame(11, '111')).toBe(false)
    expect(snapshot.isRunning(99)).toBe(false)
  })
})

describe('choosing a table', () => {
  it('MESH_PROCESS_TABLE forces one; otherwise /proc where it exists', () => {
    expect(defaultProcessTableKind({MESH_PROCESS_TABLE: 'ps'})).toBe('ps')
    expect(defaultProcessTableKind({MESH_PROCESS_TABLE: 'proc'})).toBe('proc')
    expect(defaultProcessTableKind({})).toBe(existsSync('/proc/self/stat') ? 'proc' : 'ps')
  })
})

const kinds: ProcessTableKind[] = existsSync('/proc/self/stat') ? ['proc', 'ps'] : ['ps']
describe.each(kinds)('the %s table on this machine', (kind) => {
  const table = processTable(kind)

  it('knows this process, its parent and group, and forgets a child once it has gone', async () => {
    const self = table.readSync().get(process.pid)!
    expect(self).toMatchObject({pid: process.pid, ppid: process.ppid, zombie: false})
    expect(self.startTime).toMatch(/^\d+$/)
    // The same start time on every look: it is an identity, not a clock reading.
    expect((await table.read()).get(process.pid)?.startTime).toBe(self.startTime)
    const child = spawn('sleep', ['5'], {stdio: 'ignore'})
    try {
      const seen = await table.read()
      expect(seen.isRunning(child.pid!)).toBe(true)
      expect(seen.descendants(process.pid).map((d) => d.pid)).toContain(child.pid)
    } finally {
      child.kill('SIGKILL')
    }
    await once(child, 'exit') // node reaps it, so the pid no longer exists
    expect(table.readSync().isRunning(child.pid!)).toBe(false)
    expect(table.readSync().get(-1)).toBeUndefined()
  })
})

describe('coalesced', () => {
  it('gives every caller a look begun after it asked; those asking during one share the next', async () => {
    let looks = 0
    const pending: Array<() => void> = []
    const read = coalesced(
      () =>
        new Promise<ProcessSnapshot>((resolve) => {
          const n = ++looks
          pending.push(() => resolve(ProcessSnapshot.of([{pid: n, ppid: 0, pgid: n, zombie: false, startTime: String(n)}])))
        }),
    )
    const first = read()
    const [second, third] = [read(), read()]
    expect(looks).toBe(1)
    pending.shift()!()
    expect((await first).get(1)).toBeDefined()
    // The two that asked while the first look was under way get the second look, not the first.
    await new Promise((r) => setTimeout(r, 0))
    expect(looks).toBe(2)
    pending.shift()!()
    expect((await second).get(2)).toBeDefined()
    expect(await third).toBe(await second)
  })
})
