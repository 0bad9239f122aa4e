// The live `mesh top` screen: the one module that imports blessed (swap the import for a
// fork and nothing else changes). It draws the same frame as `mesh top --once`, about
// once a second, with a selection; overlays show a trace's waterfall, a fault form,
// instance details, a live tap of a service's requests and help. The mesh changes only
// through the explicit f and c keys.
//
//   source.snapshot() ──every intervalMs──▶ model ──renderFrame(model, size, view)──▶ main box
//   keys ──▶ view state (focus, selection, filter) | overlay | source.injectFault / clearFaults
import blessed from 'blessed'
import type {FaultSpec} from '../faults/fault.js'
import {parseDuration} from '../config/duration.js'
import type {Span} from '../telemetry/span.js'
import {renderWaterfall} from '../telemetry/waterfall.js'
import {filterServices, filterTraces, fit, renderFrame, scalingLines, type ServiceView, type TopModel, type ViewState} from './snapshot.js'

/** Where the screen gets its data and sends its two actions; the command wires the control API in. */
export interface TopSource {
  snapshot(): Promise<TopModel>
  trace(id: string): Promise<Span[]>
  injectFault(spec: FaultSpec): Promise<{id: string}>
  clearFaults(service: string): Promise<unknown[]>
  /** `mesh tap SERVICE` as lines, live until the returned stop is called; `onError` if the stream fails. */
  tap(service: string, onLine: (line: string) => void, onError: (message: string) => void): () => void
}

export interface ScreenOptions {
  source: TopSource
  intervalMs: number
  colour: boolean
}

type Mode = 'main' | 'waterfall' | 'form' | 'help' | 'filter' | 'details' | 'tap'

/** Lines a tap overlay keeps: a few screens' worth to scroll back through. */
const TAP_LINES = 500

const FORM_KINDS = ['abort', 'delay', 'reset'] as const
type FormKind = (typeof FORM_KINDS)[number]
const VALUE_DEFAULT: Record<FormKind, string> = {abort: '503', delay: '300ms', reset: ''}
const VALUE_LABEL: Record<FormKind, string> = {abort: 'status', delay: 'delay', reset: 'after bytes'}
const VALUE_HINT: Record<FormKind, string> = {abort: 'HTTP status answered, e.g. 503', delay: 'e.g. 300ms, 1s', reset: 'bytes passed first; empty: at once'}

interface FormState {
  service: string
  field: number
  kind: FormKind
  value: string
  percent: string
  duration: string
  /** The next printable key replaces the field (as a selected text field would). */
  fresh: boolean
  error?: string
}

const HELP = `mesh top — keys

  Tab            switch between the services and traces panes
  ↑ ↓ / k j      move the selection (PgUp/PgDn, Home/End too)
  Enter          services: the service's instances · traces: the trace as a waterfall
  Esc            back (close the overlay, clear the filter)
  f              inject a fault on the selected service (form: kind, value, percent, duration)
  c              clear the selected service's faults
  t              tap the selected service: its requests, live (as mesh tap SERVICE)
  /              filter services and traces by name (Enter keeps it, Esc clears it)
  ?              this help
  q, Ctrl-C      quit

Edges are labelled with requests per second and coloured by success rate
(green ≥ 99%, yellow ≥ 95%, red below; grey: no traffic in the window).
Nothing here changes the mesh except f and c.

Esc or ? closes this help.`

/** Runs until q / Ctrl-C; the terminal is restored however it ends (quit, error, signal). */
export async function runScreen(opts: ScreenOptions): Promise<void> {
  const screen = blessed.screen({
    smartCSR: true,
    title: 'mesh top',
    warnings: false,
    autoPadding: false,
    // The frame is drawn with box-drawing characters; without this blessed maps them to the
    // terminal's line-drawing charset, which shows as q and x letters under tmux and screen.
    fullUnicode: true,
    forceUnicode: true,
  } as blessed.Widgets.IScreenOptions)
  // Same reason: blessed still swaps ─ │ · for ACS codes when the terminfo has them; the
  // terminals this runs in (UTF-8 everywhere) draw the characters themselves.
  ;(screen as unknown as {tput: {brokenACS: boolean}}).tput.brokenACS = true
  let restored = false
  const restore = () => {
    if (restored) return
    restored = true
    try {
      screen.destroy()
    } catch {
      // Restoring is best effort: a half-torn-down terminal must not hide the real error.
    }
    if (process.stdin.isTTY) {
      try {
        process.stdin.setRawMode(false)
      } catch {
        // stdin already closed
      }
    }
    process.stdin.pause()
  }

  return new Promise<void>((resolve, reject) => {
    const signals: NodeJS.Signals[] = ['SIGTERM', 'SIGHUP', 'SIGINT', 'SIGQUIT']
    const onSignal = (sig: NodeJS.Signals) => {
      finish()
      process.exit(128 + ({SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGTERM: 15} as Record<string, number>)[sig])
    }
    const onExit = () => restore()
    const onCrash = (error: unknown) => {
      finish()
      reject(error)
    }
    let timer: NodeJS.Timeout | undefined
    let done = false
    const finish = () => {
      if (done) return
      done = true
      if (timer) clearTimeout(timer)
      for (const s of signals) process.removeListener(s, onSignal)
      process.removeListener('uncaughtException', onCrash)
      process.removeListener('exit', onExit)
      restore()
    }
    for (const s of signals) process.on(s, onSignal)
    process.on('uncaughtException', onCrash)
    process.on('exit', onExit)

    const main = blessed.box({parent: screen, top: 0, left: 0, width: '100%', height: '100%', tags: false, wrap: false})
    const overlay = blessed.box({
      parent: screen,
      top: 1,
      left: 0,
      width: '100%',
      height: '100%-1',
      tags: false,
      wrap: false,
      hidden: true,
      scrollable: true,
      alwaysScroll: true,
      style: {bg: 'black'},
    })
    const dialog = blessed.box({
      parent: screen,
      top: 'center',
      left: 'center',
      width: 64,
      height: 12,
      border: {type: 'line'},
      tags: false,
      wrap: false,
      hidden: true,
      label: ' inject fault ',
    })

    let model: TopModel | undefined
    let fetchError: string | undefined
    let flash: {text: string; until: number} | undefined
    let mode: Mode = 'main'
    const view: ViewState = {focus: 'services', service: 0, trace: 0}
    let filterDraft = ''
    let form: FormState | undefined
    let openTraceId: string | undefined

    const say = (text: string) => {
      flash = {text, until: Date.now() + 4000}
      draw()
    }

    const selectedService = (): ServiceView | undefined => (model ? filterServices(model, view.filter)[view.service] : undefined)

    const clampSelection = () => {
      if (!model) return
      const ns = filterServices(model, view.filter).length
      const nt = filterTraces(model, view.filter).length
      view.service = Math.max(0, Math.min(view.service, ns - 1))
      view.trace = Math.max(0, Math.min(view.trace, nt - 1))
    }

    const draw = () => {
      if (restored) return
      const width = Math.max(20, screen.width as number)
      const height = Math.max(5, screen.height as number)
      let lines: string[]
      if (model) {
        clampSelection()
        lines = renderFrame(model, {width, height, colour: opts.colour, view}).split('\n')
      } else {
        lines = [fit(`mesh top — ${fetchError ? `waiting for the mesh: ${fetchError}` : 'loading…'}`, width)]
      }
      const note = flash && flash.until > Date.now() ? flash.text : fetchError && model ? `stale: ${fetchError}` : undefined
      if (note) lines[0] = invert(fit(note, width), opts.colour)
      if (mode === 'filter') lines[lines.length - 1] = fit(`/${filterDraft}▏  (Enter keeps, Esc clears)`, width)
      main.setContent(lines.join('\n'))
      if (mode === 'form' && form) dialog.setContent(formText(form))
      screen.render()
    }

    const refresh = async () => {
      try {
        model = await opts.source.snapshot()
        fetchError = undefined
      } catch (error) {
        fetchError = error instanceof Error ? error.message : String(error)
      }
      if (done) return
      draw()
      timer = setTimeout(() => void refresh(), opts.intervalMs)
    }

    const showOverlay = (text: string) => {
      overlay.setContent(text)
      overlay.setScroll(0)
      overlay.show()
      overlay.setFront()
    }
    // The tap overlay: lines as they come, drawn at most every 100 ms, following the end until scrolled up.
    let tap: {service: string; lines: string[]; stop: () => void; drawTimer?: NodeJS.Timeout; follow: boolean} | undefined
    const drawTap = () => {
      if (!tap) return
      tap.drawTimer = undefined
      const head = `tap ${tap.service}: requests as they complete, newest last  (↑↓ scroll · Esc back)`
      overlay.setContent([head, ...(tap.lines.length ? tap.lines : ['waiting for requests…'])].join('\n'))
      if (tap.follow) overlay.setScrollPerc(100)
      screen.render()
    }
    const stopTap = () => {
      if (!tap) return
      tap.stop()
      if (tap.drawTimer) clearTimeout(tap.drawTimer)
      tap = undefined
    }
    const openTap = () => {
      const s = selectedService()
      if (!s) return say('no service selected')
      mode = 'tap'
      const t: NonNullable<typeof tap> = {service: s.name, lines: [], stop: () => undefined, follow: true}
      tap = t
      showOverlay('')
      t.stop = opts.source.tap(
        s.name,
        (line) => {
          t.lines.push(line)
          if (t.lines.length > TAP_LINES) t.lines.splice(0, t.lines.length - TAP_LINES)
          if (tap === t) t.drawTimer ??= setTimeout(drawTap, 100)
        },
        (message) => {
          t.lines.push(`tap ended: ${message}`)
          if (tap === t) drawTap()
        },
      )
      drawTap()
      draw()
    }

    const closeOverlays = () => {
      stopTap()
      overlay.hide()
      dialog.hide()
      mode = 'main'
      form = undefined
      openTraceId = undefined
      draw()
    }

    const openTrace = async () => {
      const t = model ? filterTraces(model, view.filter)[view.trace] : undefined
      if (!t) return say('no trace selected: Tab to the traces pane first')
      mode = 'waterfall'
      openTraceId = t.id
      showOverlay(`trace ${t.id} — loading…`)
      draw()
      try {
        const spans = await opts.source.trace(t.id)
        if (mode !== 'waterfall' || openTraceId !== t.id) return
        const width = Math.max(40, (screen.width as number) - 1)
        showOverlay(`trace ${t.id}  (↑↓ scroll · Esc back)\n${renderWaterfall(spans, {width, colour: opts.colour, why: true, now: Date.now()})}`)
      } catch (error) {
        if (mode === 'waterfall') showOverlay(`trace ${t.id}: ${error instanceof Error ? error.message : String(error)}\n\nEsc back`)
      }
      draw()
    }

    const openDetails = () => {
      const s = selectedService()
      if (!s) return
      mode = 'details'
      const rows = s.instances.map((i) => `  ${i.name.padEnd(28)} ${i.version.padEnd(6)} ${(i.ejected ? `ejected (${i.ejected})` : i.health).padEnd(24)} restarts ${i.restarts}`)
      const versions = s.versions.map((v) => `${v.name} ×${v.replicas} weight ${v.weight}%`).join(', ')
      showOverlay(
        [`${s.name}  (Esc back)`, '', `versions: ${versions || '-'}`, `calls: ${s.dependsOn.join(', ') || '-'}`, `security: ${s.security ?? 'plaintext'}`, `faults: ${s.faults.join('; ') || '-'}`, ...scalingLines(s), '', 'instances:', ...rows].join('\n'),
      )
      draw()
    }

    const openForm = () => {
      const s = selectedService()
      if (!s) return say('no service selected')
      mode = 'form'
      form = {service: s.name, field: 0, kind: 'abort', value: VALUE_DEFAULT.abort, percent: '100', duration: '', fresh: true}
      dialog.setLabel(` inject fault on ${s.name} `)
      dialog.width = Math.max(30, Math.min(72, (screen.width as number) - 2))
      dialog.show()
      dialog.setFront()
      draw()
    }

    const submitForm = async () => {
      if (!form) return
      const spec = formSpec(form)
      if ('error' in spec) {
        form.error = spec.error
        return draw()
      }
      const f = form
      closeOverlays()
      try {
        const info = await opts.source.injectFault(spec)
        say(`fault ${info.id} injected on ${f.service}`)
      } catch (error) {
        say(`inject failed: ${error instanceof Error ? error.message : String(error)}`)
      }
      void refreshSoon()
    }

    const clearFaults = async () => {
      const s = selectedService()
      if (!s) return
      try {
        const cleared = await opts.source.clearFaults(s.name)
        say(cleared.length ? `cleared ${cleared.length} fault(s) on ${s.name}` : `${s.name} has no faults`)
      } catch (error) {
        say(`clear failed: ${error instanceof Error ? error.message : String(error)}`)
      }
      void refreshSoon()
    }

    // After an action, show its effect now rather than at the next tick.
    const refreshSoon = async () => {
      if (timer) clearTimeout(timer)
      await refresh()
    }

    const move = (delta: number) => {
      if (view.focus === 'services') view.service = Math.max(0, view.service + delta)
      else view.trace = Math.max(0, view.trace + delta)
      draw()
    }

    const onKey = (ch: string | undefined, key: {name?: string; full?: string; ctrl?: boolean; shift?: boolean}) => {
      const name = key.name ?? ''
      if (key.full === 'C-c') return quit()
      if (name === 'return') return // Enter arrives twice (return, then enter): act once.
      switch (mode) {
        case 'form':
          return formKey(ch, name, key.shift === true)
        case 'filter':
          return filterKey(ch, name)
        case 'waterfall':
        case 'details':
        case 'help':
        case 'tap':
          if (name === 'escape' || name === 'q' || (mode === 'help' && ch === '?')) return closeOverlays()
          if (name === 'up' || name === 'k') overlay.scroll(-1)
          if (name === 'down' || name === 'j') overlay.scroll(1)
          if (name === 'pageup') overlay.scroll(-((screen.height as number) - 3))
          if (name === 'pagedown' || name === 'space') overlay.scroll((screen.height as number) - 3)
          if (name === 'end') overlay.setScrollPerc(100)
          // A tap follows new lines until scrolled up, and again once scrolled back to the end.
          if (tap) tap.follow = overlay.getScrollPerc() >= 100
          return draw()
        case 'main':
          if (name === 'q') return quit()
          if (name === 'tab' || name === 'left' || name === 'right') {
            view.focus = view.focus === 'services' ? 'traces' : 'services'
            return draw()
          }
          if (name === 'up' || name === 'k') return move(-1)
          if (name === 'down' || name === 'j') return move(1)
          if (name === 'pageup') return move(-10)
          if (name === 'pagedown') return move(10)
          if (name === 'home') return move(-1e6)
          if (name === 'end') return move(1e6)
          if (name === 'enter') return void (view.focus === 'traces' ? openTrace() : openDetails())
          if (name === 'escape') {
            view.filter = undefined
            return draw()
          }
          if (ch === '?') {
            mode = 'help'
            showOverlay(HELP)
            return draw()
          }
          if (ch === '/') {
            mode = 'filter'
            filterDraft = view.filter ?? ''
            return draw()
          }
          if (name === 'f') return openForm()
          if (name === 'c') return void clearFaults()
          if (name === 't') return openTap()
      }
    }

    const filterKey = (ch: string | undefined, name: string) => {
      if (name === 'escape') {
        view.filter = undefined
        mode = 'main'
      } else if (name === 'enter') {
        view.filter = filterDraft.trim() || undefined
        mode = 'main'
      } else if (name === 'backspace') {
        filterDraft = filterDraft.slice(0, -1)
      } else if (ch && /^[\x20-\x7e]$/.test(ch)) {
        filterDraft += ch
      }
      if (mode === 'filter') view.filter = filterDraft.trim() || undefined
      view.service = 0
      view.trace = 0
      draw()
    }

    const formKey = (ch: string | undefined, name: string, shift: boolean) => {
      const f = form!
      if (name === 'escape') return closeOverlays()
      if (name === 'enter') return void submitForm()
      if ((name === 'tab' && !shift) || name === 'down') {
        f.field = (f.field + 1) % 4
        f.fresh = true
      } else if ((name === 'tab' && shift) || name === 'up') {
        f.field = (f.field + 3) % 4
        f.fresh = true
      } else if (f.field === 0) {
        const at = FORM_KINDS.indexOf(f.kind)
        let next: FormKind | undefined
        if (name === 'left') next = FORM_KINDS[(at + FORM_KINDS.length - 1) % FORM_KINDS.length]
        else if (name === 'right' || name === 'space') next = FORM_KINDS[(at + 1) % FORM_KINDS.length]
        else next = FORM_KINDS.find((k) => k[0] === ch)
        if (next && next !== f.kind) {
          f.kind = next
          f.value = VALUE_DEFAULT[next]
        }
      } else {
        const prop = (['value', 'percent', 'duration'] as const)[f.field - 1]
        if (name === 'backspace') {
          f[prop] = f.fresh ? '' : f[prop].slice(0, -1)
          f.fresh = false
        } else if (ch && /^[\x21-\x7e]$/.test(ch)) {
          f[prop] = (f.fresh ? '' : f[prop]) + ch
          f.fresh = false
        }
      }
      f.error = undefined
      draw()
    }

    const quit = () => {
      stopTap()
      finish()
      resolve()
    }

    screen.on('keypress', (ch: string | undefined, key: {name?: string; full?: string; shift?: boolean}) => {
      try {
        onKey(ch, key ?? {})
      } catch (error) {
        onCrash(error)
      }
    })
    screen.on('resize', () => {
      if (mode === 'waterfall' && openTraceId) void openTrace()
      draw()
    })
    draw()
    void refresh()
  })
}

function invert(text: string, colour: boolean): string {
  return colour ? `\x1b[7m${text}\x1b[27m` : text
}

function formText(f: FormState): string {
  const field = (i: number, label: string, value: string, hint: string) => {
    const cursor = f.field === i ? '▶' : ' '
    const shown = f.field === i ? `[${value}${f.fresh ? '' : '▏'}]` : ` ${value || '-'} `
    return `${cursor} ${label.padEnd(12)} ${shown.padEnd(14)} ${hint}`
  }
  const kinds = FORM_KINDS.map((k) => (k === f.kind ? `(${k})` : ` ${k} `)).join(' ')
  return [
    `${f.field === 0 ? '▶' : ' '} ${'kind'.padEnd(12)} ${kinds}`,
    field(1, VALUE_LABEL[f.kind], f.value, VALUE_HINT[f.kind]),
    field(2, 'percent', f.percent, '0–100 of requests'),
    field(3, 'duration', f.duration, 'e.g. 30s; empty: until c'),
    '',
    f.error ? `! ${f.error}` : '',
    'Tab/↑↓ field · ←→ or a/d/r kind · Enter inject · Esc cancel',
  ].join('\n')
}

/** The form as a FaultSpec, or what is wrong with it. */
export function formSpec(f: Pick<FormState, 'service' | 'kind' | 'value' | 'percent' | 'duration'>): FaultSpec | {error: string} {
  const spec: FaultSpec = {service: f.service, kind: f.kind}
  const percent = Number(f.percent.trim() || '100')
  if (!Number.isFinite(percent) || percent < 0 || percent > 100) return {error: `percent "${f.percent}" is not 0–100`}
  spec.percent = percent
  if (f.duration.trim()) {
    const ms = parseDuration(f.duration.trim())
    if (ms === undefined || ms <= 0) return {error: `duration "${f.duration}" is not a duration like 30s or 5m`}
    spec.durationMs = ms
  }
  const value = f.value.trim()
  if (f.kind === 'abort') {
    const status = Number(value || '503')
    if (!Number.isInteger(status) || status < 100 || status > 599) return {error: `status "${f.value}" is not an HTTP status (100–599)`}
    spec.status = status
  } else if (f.kind === 'delay') {
    const ms = parseDuration(value)
    if (ms === undefined || ms <= 0) return {error: `delay "${f.value}" is not a duration like 300ms`}
    spec.delayMs = ms
  } else if (value) {
    const bytes = Number(value)
    if (!Number.isInteger(bytes) || bytes < 0) return {error: `after bytes "${f.value}" is not a whole number`}
    spec.afterBytes = bytes
  }
  return spec
}
