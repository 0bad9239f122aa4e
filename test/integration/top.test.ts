// `mesh top` against a real mesh under load: `--once` prints one plain frame; the live
// screen, driven through tmux, shows every service with traffic, injects a fault from
// its `f` form (the service's success rate falls, the events line names the fault), taps
// the service with `t` (its requests live, the injected 503s among them), and `q` exits 0
// leaving the terminal as it found it (alternate screen off, cursor shown).
//
//   load ──▶ ingress ──▶ front ─┬─▶ mid ──▶ leaf     (abort 503 injected on leaf)
//                               └─▶ side
import {execFileSync, spawnSync} from 'node:child_process'
import {afterAll, beforeAll, describe, expect, test} from 'vitest'
import {BIN, eventually, mesh, upMesh} from '../helpers/mesh.js'

const yaml = (port: number) => `
name: toptest
ingress:
  port: ${port}
  routes: [{prefix: /, service: front}]
services:
  front:
    dependsOn: [mid, side]
    simulate: {latency: {p50: 2ms, p99: 5ms}, calls: [{service: mid, probability: 1, path: /mid}, {service: side, probability: 0.5, path: /side}], seed: 1}
  mid:
    dependsOn: [leaf]
    simulate: {latency: {p50: 2ms, p99: 5ms}, calls: [{service: leaf, probability: 1, path: /leaf}], seed: 2}
  side:
    simulate: {latency: {p50: 2ms, p99: 5ms}, seed: 3}
  leaf:
    replicas: 2
    simulate: {latency: {p50: 2ms, p99: 5ms}, seed: 4}
`
const SERVICES = ['front', 'mid', 'side', 'leaf']

const hasTmux = spawnSync('tmux', ['-V']).status === 0
if (!hasTmux) console.warn('top.test: tmux is not installed, so the live-screen test is skipped (CI installs it: `command -v tmux || apt-get install -y tmux`).')

/** The services-table row of `name` in a captured frame: rps and success (undefined for '-'). */
function serviceRow(frame: string, name: string): {rps: number; success?: number; line: string} | undefined {
  const line = frame.split('\n').find((l) => new RegExp(`^[ ▶] ${name}\\s+v1\\s+\\d+/\\d+\\s`).test(l))
  const m = line && /\d+\/\d+\s+([\d.]+)\s+(-|[\d.]+%)/.exec(line)
  if (!line || !m) return undefined
  return {rps: Number(m[1]), success: m[2] === '-' ? undefined : Number(m[2].slice(0, -1)), line}
}

describe('mesh top', () => {
  let dir: string
  let ingress: string
  const stopLoad = new AbortController()
  let load: Promise<unknown>

  beforeAll(async () => {
    ;({dir, ingress} = await upMesh(yaml))
    // Steady background traffic for the whole file; the load generator is the one `mesh load` uses.
    const {runLoad} = await import('../../src/sim/load/load-generator.js')
    load = runLoad({target: ingress, rps: 40, durationMs: 120_000, path: '/', signal: stopLoad.signal}).catch(() => undefined)
  })

  afterAll(async () => {
    stopLoad.abort()
    await load
    if (dir) await mesh(dir, ['down'])
  })

  test('--once prints one plain frame: every service with non-zero rps, the traces pane and the events line', async () => {
    let shown = ''
    const frame = await eventually(async () => {
      // Piped, the frame is as wide as COLUMNS says (120 without it).
      const r = await mesh(dir, ['top', '--once'], {env: {COLUMNS: '90'}})
      expect(r.exitCode, r.stderr).toBe(0)
      shown = r.stdout
      return SERVICES.every((s) => (serviceRow(r.stdout, s)?.rps ?? 0) > 0) ? r.stdout : undefined
    }, 20_000, 100, () => `the last frame:\n${shown}`)
    expect(frame, 'every service shows traffic within 20s').toBeTruthy()
    expect(frame).not.toMatch(/\x1b\[/)
    expect(frame).toMatch(/── topology/)
    expect(frame).toMatch(/\/s▶/)
    expect(frame).toMatch(/── slow or failed traces/)
    expect(frame).toMatch(/^events: .*healthy/m)
    for (const line of frame!.split('\n')) expect(line.length).toBeLessThanOrEqual(90)
    expect(Math.max(...frame!.split('\n').map((l) => l.length))).toBeGreaterThan(80)
  })

  test('without a terminal and without --once it draws nothing, points to `mesh stat --json`, exits 2', async () => {
    const r = await mesh(dir, ['top'])
    expect(r.exitCode).toBe(2)
    expect(r.stdout).toBe('')
    expect(r.stderr).toMatch(/not .*terminal|needs a terminal/)
    expect(r.stderr).toContain('mesh stat --json')
    expect(r.stderr).toContain('mesh top --once')
  })

  test('duration flags of top, stat and load are read one way, each with its own lower bound', async () => {
    const cases: [string[], string][] = [
      [['top', '--once', '--interval', '50ms'], '--interval "50ms" is not a duration of at least 100ms.'],
      [['stat', '--window', '0s'], '--window "0s" is not a positive duration.'],
      [['load', 'ingress', '--rps', '5', '--duration', 'soon'], '--duration "soon" is not a positive duration.'],
    ]
    for (const [args, message] of cases) {
      const r = await mesh(dir, args)
      expect(r.exitCode, args.join(' ')).toBe(2)
      expect(r.stderr).toContain(message)
      expect(r.stderr).toContain('Examples: ')
    }
  })

  test.skipIf(!hasTmux)('live in tmux: traffic on every service, a fault from the f form, its requests tapped with t, q restores the terminal', async () => {
    const session = `meshtop-${process.pid}-${Date.now()}`
    const tmux = (...args: string[]) => execFileSync('tmux', args, {encoding: 'utf8'})
    const capture = () => tmux('capture-pane', '-p', '-t', session)
    const keys = (...k: string[]) => tmux('send-keys', '-t', session, ...k)
    try {
      // The shell outlives mesh top by a minute, so its exit status and the restored screen can be read.
      tmux('new-session', '-d', '-x', '120', '-y', '40', '-s', session, `cd '${dir}' && '${process.execPath}' '${BIN}' top; echo "mesh-top-exited-$?"; sleep 60`)

      const live = await eventually(() => {
        const frame = capture()
        return SERVICES.every((s) => (serviceRow(frame, s)?.rps ?? 0) > 0) ? frame : undefined
      }, 30_000, 250, capture)
      expect(live, `every service with non-zero rps:\n${capture()}`).toBeTruthy()
      for (const s of SERVICES) expect(live).toContain(s)
      expect(live).toMatch(/┌─+┐/)
      expect(serviceRow(live!, 'leaf')!.success).toBe(100)

      // Select leaf (the fourth row, in mesh.yaml order) and fill the form: abort 503 on every request for 2 minutes.
      keys('Down', 'Down', 'Down')
      expect(await eventually(() => /^▶ leaf /m.test(capture()), 5000, 100, capture)).toBe(true)
      keys('f')
      expect(await eventually(() => capture().includes('inject fault on leaf'), 5000, 100, capture)).toBe(true)
      keys('a', 'Tab', '5', '0', '3', 'Tab', '1', '0', '0', 'Tab', '2', 'm')
      expect(await eventually(() => /duration\s+\[2m/.test(capture()), 5000, 100, capture)).toBe(true)
      keys('Enter')

      const hit = await eventually(() => {
        const frame = capture()
        const leaf = serviceRow(frame, 'leaf')
        const events = frame.split('\n').filter((l) => l.startsWith('events: ')).join('')
        return leaf?.success !== undefined && leaf.success < 90 && /fault f\S* on leaf: abort 503/.test(events) ? frame : undefined
      }, 30_000, 250, capture)
      expect(hit, `leaf's success falls and the events line shows the fault:\n${capture()}`).toBeTruthy()
      expect(serviceRow(hit!, 'leaf')!.line).toMatch(/abort 503/)

      // t taps the selected service: its requests, live, in the access log's layout; Esc goes back.
      keys('t')
      const tapped = await eventually(() => {
        const frame = capture()
        return frame.includes('tap leaf: requests as they complete') && /→ leaf\S*\s+GET \/leaf\s+503\s/.test(frame) ? frame : undefined
      }, 15_000, 250, capture)
      expect(tapped, `the tap overlay shows leaf's requests, the injected 503s among them:\n${capture()}`).toBeTruthy()
      keys('Escape')
      expect(await eventually(() => !capture().includes('tap leaf:') && /^▶ leaf /m.test(capture()), 5000, 100, capture)).toBe(true)

      keys('q')
      const after = await eventually(() => {
        const frame = capture()
        return frame.includes('mesh-top-exited-') ? frame : undefined
      }, 10_000, 100, capture)
      expect(after, `mesh top exits on q:\n${capture()}`).toMatch(/mesh-top-exited-0/)
      // Back on the normal screen with the cursor shown: what `tput rmcup; tput cnorm` would leave.
      expect(tmux('display-message', '-p', '-t', session, '#{alternate_on} #{cursor_flag}').trim()).toBe('0 1')
      expect(after).not.toMatch(/── topology|SERVICE/)
    } finally {
      spawnSync('tmux', ['kill-session', '-t', session])
    }
  })
})
