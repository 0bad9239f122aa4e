// Every question the mesh asks about processes — is it alive, is it still the process we
// recorded (PIDs are reused), its parent, its group, its group's members, its descendants —
// goes through one ProcessTable. Two implementations answer them:
//
//   proc  Linux's /proc: one small file per pid, read on demand (fast; today's default on Linux)
//   ps    `ps -A -o pid=,ppid=,pgid=,stat=,lstart=`, parsed here: the columns are the same in
//         BSD ps (macOS) and procps ps, the selection flags are not, so every process is listed
//         and filtered in code — one `ps` per snapshot, never one per pid
//
// The platform picks (proc where /proc exists); MESH_PROCESS_TABLE=ps|proc forces one, so CI
// on Linux runs the code a Mac runs. A start time is only comparable within one table (clock
// ticks since boot vs. seconds since the epoch), so state.json says which table wrote its
// records and `mesh down` reads them back with that one.

import {execFile, execFileSync} from 'node:child_process'
import {existsSync, readdirSync, readFileSync} from 'node:fs'
import {readdir, readFile} from 'node:fs/promises'
import {MeshError} from '../errors.js'

export type ProcessTableKind = 'proc' | 'ps'

export interface ProcessEntry {
  pid: number
  ppid: number
  pgid: number
  /** Exited, not yet reaped: it holds its pid (so that pid is not reused yet) but runs nothing. */
  zombie: boolean
  /** When it started, as this table tells it: with the pid, an identity that survives pid reuse. */
  startTime: string
}

/** One look at the table; each question about it is answered from that look. */
export class ProcessSnapshot {
  private readonly byPid = new Map<number, ProcessEntry | null>()
  private everything?: ProcessEntry[]

  /** `lookup` answers one pid (cheap under /proc); `list` lists every process (once per snapshot). */
  constructor(
    private readonly lookup: (pid: number) => ProcessEntry | undefined,
    private readonly list: () => ProcessEntry[],
  ) {}

  static of(entries: ProcessEntry[]): ProcessSnapshot {
    const map = new Map(entries.map((e) => [e.pid, e]))
    return new ProcessSnapshot((pid) => map.get(pid), () => entries)
  }

  get(pid: number): ProcessEntry | undefined {
    if (!Number.isInteger(pid) || pid <= 0) return undefined
    if (this.everything) return this.byPid.get(pid) ?? undefined
    if (!this.byPid.has(pid)) this.byPid.set(pid, this.lookup(pid) ?? null)
    return this.byPid.get(pid) ?? undefined
  }

  all(): ProcessEntry[] {
    if (!this.everything) {
      this.everything = this.list()
      this.byPid.clear()
      for (const e of this.everything) this.byPid.set(e.pid, e)
    }
    return this.everything
  }

  /** The pid names a process that has not exited (a zombie has). */
  isRunning(pid: number): boolean {
    const e = this.get(pid)
    return e !== undefined && !e.zombie
  }

  /** The pid still names the process that had this start time. A zombie counts: its pid cannot be reused yet. */
  isSame(pid: number, startTime: string): boolean {
    return this.get(pid)?.startTime === startTime
  }

  /** The running members of a process group. */
  groupMembers(pgid: number): number[] {
    return this.all()
      .filter((e) => e.pgid === pgid && !e.zombie)
      .map((e) => e.pid)
  }

  /** Every process whose chain of parents leads to pid (pid itself not included), zombies left out. */
  descendants(pid: number): ProcessEntry[] {
    const children = new Map<number, ProcessEntry[]>()
    for (const e of this.all()) {
      const list = children.get(e.ppid)
      if (list) list.push(e)
      else children.set(e.ppid, [e])
    }
    const out: ProcessEntry[] = []
    const queue = [pid]
    const seen = new Set(queue)
    while (queue.length > 0) {
      for (const child of children.get(queue.shift()!) ?? []) {
        if (seen.has(child.pid)) continue
        seen.add(child.pid)
        queue.push(child.pid)
        if (!child.zombie) out.push(child)
      }
    }
    return out
  }
}

export interface ProcessTable {
  readonly kind: ProcessTableKind
  /** For the CLI, whose every command asks once and exits. */
  readSync(): ProcessSnapshot
  /** For the daemon: `ps` runs without blocking the data plane. */
  read(): Promise<ProcessSnapshot>
}

// ---------------------------------------------------------------- /proc

/**
 * Parses the text of /proc/PID/stat. comm (field 2) is in parentheses and may
 * itself contain spaces and parentheses, so fields are counted after the LAST ')'.
 * startTime is field 22: clock ticks since boot.
 */
export function parseStat(text: string): ProcessEntry | undefined {
  const open = text.indexOf('(')
  const close = text.lastIndexOf(')')
  if (open < 0 || close < open) return undefined
  const pid = Number(text.slice(0, open).trim())
  // rest[0] is field 3 (state), so field N is rest[N - 3].
  const rest = text.slice(close + 1).trim().split(/\s+/)
  const startTime = rest[22 - 3]
  if (!Number.isInteger(pid) || startTime === undefined || !/^\d+$/.test(startTime)) return undefined
  return {pid, ppid: Number(rest[4 - 3]), pgid: Number(rest[5 - 3]), zombie: rest[0] === 'Z' || rest[0] === 'X', startTime}
}

function readProcStat(pid: number): ProcessEntry | undefined {
  try {
    return parseStat(readFileSync(`/proc/${pid}/stat`, 'utf8'))
  } catch {
    return undefined
  }
}

function listProc(): ProcessEntry[] {
  const out: ProcessEntry[] = []
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    const e = readProcStat(Number(name))
    if (e) out.push(e)
  }
  return out
}

/** Every process, read on the thread pool: the daemon's periodic look must not stall the data plane for a few ms. */
async function listProcAsync(): Promise<ProcessEntry[]> {
  const pids = (await readdir('/proc')).filter((name) => /^\d+$/.test(name))
  const entries = await Promise.all(pids.map((pid) => readFile(`/proc/${pid}/stat`, 'utf8').then(parseStat, () => undefined)))
  return entries.filter((e): e is ProcessEntry => e !== undefined)
}

const procTable: ProcessTable = {
  kind: 'proc',
  readSync: () => new ProcessSnapshot(readProcStat, listProc),
  read: coalesced(async () => ProcessSnapshot.of(await listProcAsync())),
}

// ---------------------------------------------------------------- ps

const PS_ARGS = ['-A', '-o', 'pid=,ppid=,pgid=,stat=,lstart=']
// lstart is local time in the locale's words: both fixed, so every reader of a start time
// (the daemon, a CLI in another terminal with another TZ) prints and parses the same text.
const PS_OPTIONS = {env: {...process.env, TZ: 'UTC', LC_ALL: 'C', LANG: 'C'}, encoding: 'utf8' as const, maxBuffer: 64 * 1024 * 1024}
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec']

/**
 * Parses `ps -A -o pid=,ppid=,pgid=,stat=,lstart=` run with TZ=UTC and LC_ALL=C, as BSD and
 * procps print it: `  812     1   812 Ss   Sun Dec  6 21:55:25 2026`. The start time becomes
 * seconds since the epoch. Lines that do not parse (a ps that printed a warning) are skipped.
 */
export function parsePs(text: string): ProcessEntry[] {
  const out: ProcessEntry[] = []
  for (const line of text.split('\n')) {
    const m = /^\s*(\d+)\s+(\d+)\s+(\d+)\s+(\S+)\s+\w{3}\s+(\w{3})\s+(\d{1,2})\s+(\d{1,2}):(\d{2}):(\d{2})\s+(\d{4})\s*$/.exec(line)
    if (!m) continue
    const month = MONTHS.indexOf(m[5])
    if (month < 0) continue
    const seconds = Date.UTC(Number(m[10]), month, Number(m[6]), Number(m[7]), Number(m[8]), Number(m[9])) / 1000
    out.push({pid: Number(m[1]), ppid: Number(m[2]), pgid: Number(m[3]), zombie: m[4][0] === 'Z', startTime: String(seconds)})
  }
  return out
}

function psFailed(error: unknown): MeshError {
  return new MeshError('MESH_PS_FAILED', `cannot list processes with \`ps ${PS_ARGS.join(' ')}\`: ${(error as Error).message}`, {
    cause: error,
    hints: ['The mesh needs a POSIX `ps` on PATH (procps on Linux, the system ps on macOS), or /proc on Linux (unset MESH_PROCESS_TABLE).'],
  })
}

const psTable: ProcessTable = {
  kind: 'ps',
  readSync() {
    // Lazy: a question `kill -0` already answered (the group is gone) costs no `ps`.
    let entries: ProcessEntry[] | undefined
    const list = () => {
      try {
        entries ??= parsePs(execFileSync('ps', PS_ARGS, {...PS_OPTIONS, stdio: ['ignore', 'pipe', 'ignore']}))
      } catch (error) {
        throw psFailed(error)
      }
      return entries
    }
    return new ProcessSnapshot((pid) => list().find((e) => e.pid === pid), list)
  },
  read: coalesced(
    () =>
      new Promise((resolve, reject) => {
        execFile('ps', PS_ARGS, PS_OPTIONS, (error, stdout) => {
          if (error) reject(psFailed(error))
          else resolve(ProcessSnapshot.of(parsePs(stdout)))
        })
      }),
  ),
}

/**
 * Every caller gets a look that began after it asked (a process it has just started is in
 * it), and callers that ask while one is under way share the next: `mesh down` waiting for
 * thirty instances to exit makes one `ps` per poll, not thirty.
 */
export function coalesced(look: () => Promise<ProcessSnapshot>): () => Promise<ProcessSnapshot> {
  let current: Promise<ProcessSnapshot> | undefined
  let next: Promise<ProcessSnapshot> | undefined
  const begin = () => (current = look().finally(() => (current = undefined)))
  return () => {
    if (!current) return begin()
    next ??= current
      .catch(() => undefined)
      .then(() => {
        next = undefined
        return begin()
      })
    return next
  }
}

// ---------------------------------------------------------------- choice

/** MESH_PROCESS_TABLE, if it names one; otherwise /proc where there is one. */
export function defaultProcessTableKind(env: NodeJS.ProcessEnv = process.env): ProcessTableKind {
  const forced = env.MESH_PROCESS_TABLE
  if (forced === 'ps' || forced === 'proc') return forced
  return existsSync('/proc/self/stat') ? 'proc' : 'ps'
}

/** The table of that kind (records are read back with the table that wrote them), or the default one. */
export function processTable(kind: ProcessTableKind = defaultProcessTableKind()): ProcessTable {
  return kind === 'ps' ? psTable : procTable
}
