// Shared helpers for the benchmark scripts: processes (optionally pinned to a CPU),
// /proc accounting, the load clients (wrk when installed, else Node), formatting.
import {execFileSync, spawn} from 'node:child_process'
import {readdirSync, readFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

export const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url))
export const REPO = path.resolve(BENCH_DIR, '..')

export function which(cmd) {
  try {
    return execFileSync('sh', ['-c', `command -v ${cmd}`], {encoding: 'utf8'}).trim() || undefined
  } catch {
    return undefined
  }
}

export const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], {encoding: 'utf8'}).trim()) || 100
  } catch {
    return 100
  }
})()

/** utime + stime of a process, in microseconds (resolution 1/CLK_TCK s). */
export function cpuMicros(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ') // fields[0] is field 3 (state)
  return ((Number(fields[11]) + Number(fields[12])) * 1e6) / CLK_TCK
}

/**
 * `root` and every process below it (/proc), parents first. A mesh's recorded pids are not
 * enough: an instance's command runs under `/bin/sh -c`, whose own CPU is next to nothing.
 */
export function processTree(root) {
  const parent = new Map()
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8')
      parent.set(Number(name), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]))
    } catch {}
  }
  const out = [root]
  for (let i = 0; i < out.length; i++) for (const [pid, ppid] of parent) if (ppid === out[i]) out.push(pid)
  return out
}

/** Resident set size in MB (VmRSS). */
export function rssMb(pid) {
  const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m ? Number(m[1]) / 1024 : NaN
}

export function alive(pid) {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** Pinning: `taskset -c CPU cmd …` when asked and available (taskset execs, so the pid is the command's). */
export function pinned(cpu, cmd, args) {
  return cpu === undefined ? [cmd, args] : ['taskset', ['-c', String(cpu), cmd, ...args]]
}

/** Spawns a bench server script and resolves once it prints `LISTENING <port>`. */
export function startServer(script, env, cpu) {
  const [cmd, args] = pinned(cpu, process.execPath, [path.join(BENCH_DIR, script)])
  const child = spawn(cmd, args, {env: {...process.env, ...env}, stdio: ['ignore', 'pipe', 'inherit']})
  return new Promise((resolve, reject) => {
    let out = ''
    const timer = setTimeout(() => reject(new Error(`${script} did not start within 10 s`)), 10_000)
    child.once('exit', (code) => reject(new Error(`${script} exited with ${code} before listening`)))
    child.stdout.on('data', (d) => {
      out += d
      const m = /LISTENING (\d+)/.exec(out)
      if (m) {
        clearTimeout(timer)
        child.removeAllListeners('exit')
        child.stdout.resume()
        resolve({child, pid: child.pid, port: Number(m[1])})
      }
    })
  })
}

export async function stopChild(child) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise((r) => child.once('exit', r))
  child.kill('SIGTERM')
  const t = setTimeout(() => child.kill('SIGKILL'), 3_000)
  await exited
  clearTimeout(t)
}

/**
 * Runs a Node load client (closed-loop.js / open-loop.js): `onWarm` is called when it
 * prints WARM (the measured window starts), the promise resolves with its RESULT.
 */
export function runNodeClient(script, opts, cpu, onWarm) {
  const [cmd, args] = pinned(cpu, process.execPath, [path.join(BENCH_DIR, script), JSON.stringify(opts)])
  const child = spawn(cmd, args, {stdio: ['ignore', 'pipe', 'inherit']})
  return new Promise((resolve, reject) => {
    let buf = ''
    let result
    child.stdout.on('data', (d) => {
      buf += d
      let nl
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl)
        buf = buf.slice(nl + 1)
        if (line === 'WARM') onWarm?.()
        else if (line.startsWith('RESULT ')) {
          result = JSON.parse(line.slice(7))
          onWarm = undefined
        }
      }
    })
    // Resolve once the client has exited (and been reaped), so its CPU shows in cutime.
    child.once('exit', (code) => {
      if (result) resolve(result)
      else reject(new Error(`${script} exited with ${code} without a result`))
    })
  })
}

/** One wrk run: closed loop, `connections` connections on one thread. */
export function runWrk(target, {connections, durationS, cpu}) {
  const [cmd, args] = pinned(cpu, 'wrk', ['-t1', `-c${connections}`, `-d${durationS}s`, '--timeout', '5s', target])
  const out = execFileSync(cmd, args, {encoding: 'utf8', timeout: (durationS + 30) * 1000})
  const num = (re) => {
    const m = re.exec(out)
    return m ? Number(m[1]) : 0
  }
  const requests = num(/(\d+) requests in/)
  const seconds = (() => {
    const m = /requests in ([\d.]+)(ms|s|m)/.exec(out)
    if (!m) return durationS
    return Number(m[1]) * (m[2] === 'ms' ? 0.001 : m[2] === 'm' ? 60 : 1)
  })()
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out)
  const socketErrors = socket ? socket.slice(1).reduce((a, b) => a + Number(b), 0) : 0
  const non2xx = num(/Non-2xx or 3xx responses: (\d+)/)
  return {tool: 'wrk', requests, errors: socketErrors + non2xx, socketErrors, non2xx, durationMs: seconds * 1000, rps: num(/Requests\/sec:\s+([\d.]+)/)}
}

export function machine() {
  const cpus = os.cpus()
  return {
    cores: cpus.length,
    cpu: cpus[0]?.model?.trim() ?? 'unknown',
    node: process.version,
    platform: `${os.type()} ${os.release()}`,
    memGb: Math.round(os.totalmem() / 2 ** 30),
  }
}

export const fmt = {
  int: (n) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '–'),
  f: (n, d = 2) => (Number.isFinite(n) ? n.toFixed(d) : '–'),
  signed: (n, d = 2) => (Number.isFinite(n) ? (n >= 0 ? '+' : '') + n.toFixed(d) : '–'),
  x: (n, d = 2) => (Number.isFinite(n) ? `${n.toFixed(d)}×` : '–'),
}

/** A Markdown table (also readable in a terminal). */
export function table(header, rows) {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)))
  const line = (cells) => '| ' + cells.map((c, i) => (i === 0 ? String(c).padEnd(widths[i]) : String(c).padStart(widths[i]))).join(' | ') + ' |'
  return [line(header), '| ' + widths.map((w, i) => (i === 0 ? '-'.repeat(w) : '-'.repeat(w - 1) + ':')).join(' | ') + ' |', ...rows.map(line)].join('\n')
}

/** The benchmark mesh: `api` is the upstream (an address), `front` an app calling it; the policy stack on both. */
export function meshYaml(upstreamPort) {
  const policy = [
    '    policy:',
    '      loadBalancer: ewma',
    '      timeout: 2s',
    '      retries: {attempts: 2, perTryTimeout: 1s}',
    '      outlierDetection: {consecutive5xxErrors: 5, interval: 10s, baseEjectionTime: 30s}',
  ]
  return [
    'name: bench',
    'ingress:',
    '  port: 0',
    '  routes: [{prefix: /front, service: front}, {prefix: /, service: api}]',
    'services:',
    '  api:',
    `    address: 127.0.0.1:${upstreamPort}`,
    ...policy,
    '  front:',
    `    command: ${JSON.stringify(`${process.execPath} ${path.join(BENCH_DIR, 'front.js')}`)}`,
    '    dependsOn: [api]',
    ...policy,
    '',
  ].join('\n')
}

/** Machine-wide CPU time (all cores) in µs: busy and total, from /proc/stat. */
export function machineCpu() {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number)
  const total = f.slice(0, 8).reduce((a, b) => a + b, 0)
  const idle = f[3] + f[4]
  return {busy: ((total - idle) * 1e6) / CLK_TCK, total: (total * 1e6) / CLK_TCK}
}

/** CPU time of this process's reaped children (cutime + cstime), in µs: what a finished load client used. */
export function childrenCpuMicros() {
  const stat = readFileSync('/proc/self/stat', 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return ((Number(fields[13]) + Number(fields[14])) * 1e6) / CLK_TCK
}

/** `--name value` from the command line, or `dflt`. */
export function option(name, dflt) {
  const args = process.argv.slice(2)
  const i = args.indexOf(name)
  return i >= 0 ? args[i + 1] : dflt
}

/** A benchmark server process (bare proxy, front app): on SIGTERM/SIGINT close everything and exit. */
/**
 * A script that runs a MeshDaemon in-process stops it (and so the apps it started) when
 * interrupted, e.g. by `timeout`: otherwise the front app outlives the script.
 */
export function stopOnSignal(stop) {
  const onSignal = () => Promise.resolve().then(stop).catch(() => undefined).finally(() => process.exit(1))
  process.once('SIGTERM', onSignal)
  process.once('SIGINT', onSignal)
}

export function exitOnSignal(server, pool) {
  const stop = () => {
    server.close()
    server.closeAllConnections()
    pool.close().finally(() => process.exit(0))
  }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
}

/**
 * `mesh down` of the mesh in `dir`, synchronously (exit handlers cannot wait); if the CLI fails
 * or hangs, the daemon and the children state.json records are SIGKILLed by process group, so
 * a benchmark never leaves a mesh behind.
 */
export function forceMeshDown(dir, file, timeoutMs = 30_000) {
  try {
    execFileSync(process.execPath, [path.join(REPO, 'bin', 'run.js'), 'down', '-f', file], {cwd: dir, stdio: 'ignore', timeout: timeoutMs})
  } catch {
    try {
      const state = JSON.parse(readFileSync(path.join(dir, '.mesh', 'state.json'), 'utf8'))
      for (const c of state.children ?? []) if (c.pgid) try { process.kill(-c.pgid, 'SIGKILL') } catch {}
      if (state.daemon?.pid && alive(state.daemon.pid)) process.kill(state.daemon.pid, 'SIGKILL')
    } catch {}
  }
}
