// Watches a service's `watch:` paths for `mesh up --watch` (as `docker compose up --watch`
// does a service's develop.watch): edits that arrive together — an editor's save, a
// `git checkout`, a build writing many files — become one change, reported once the
// files have been quiet for `quietMs`. Dependencies, VCS data and editor droppings are
// not changes to the code.
import {type FSWatcher, statSync, watch} from 'node:fs'
import path from 'node:path'
import {realClock, type Clock, type Timer} from '../time/clock.js'

// A path segment that makes a change not worth a restart.
const IGNORED_DIRS = new Set(['node_modules', '.git', '.hg', '.svn', '.mesh', '__pycache__', '.venv', '.cache'])
// Editors write these beside a file while saving it (vim's swap and its 4913 probe, emacs' lock and backup).
const IGNORED_FILE = /(^\.#|~$|\.sw[a-p]$|^4913$|\.tmp$)/

export interface FileWatcherOptions {
  /** Absolute paths: directories are watched recursively, files on their own. */
  paths: string[]
  onChange(files: string[]): void
  quietMs?: number
  clock?: Clock
}

export class FileWatcher {
  private readonly watchers: FSWatcher[] = []
  private readonly changed = new Set<string>()
  private timer?: Timer
  private readonly quietMs: number
  private readonly clock: Clock

  constructor(private readonly opts: FileWatcherOptions) {
    this.quietMs = opts.quietMs ?? 300
    this.clock = opts.clock ?? realClock
  }

  start(): this {
    for (const p of this.opts.paths) {
      const dir = statSync(p).isDirectory()
      const w = watch(p, {recursive: dir}, (_event, name) => {
        const file = dir ? (name ? path.join(p, name.toString()) : p) : p
        if (!ignored(file)) this.note(file)
      })
      // A watched path removed (a branch switch) must not take the daemon down.
      w.on('error', () => undefined)
      this.watchers.push(w)
    }
    return this
  }

  close(): void {
    for (const w of this.watchers.splice(0)) w.close()
    this.timer?.cancel()
    this.timer = undefined
    this.changed.clear()
  }

  private note(file: string): void {
    this.changed.add(file)
    // Every event pushes the report back: one save can be a burst of events.
    this.timer?.cancel()
    this.timer = this.clock.setTimer(this.quietMs, () => {
      this.timer = undefined
      const files = [...this.changed].sort()
      this.changed.clear()
      this.opts.onChange(files)
    })
  }
}

/** Whether a changed file is beside the point (dependencies, VCS data, an editor's temporary file). */
export function ignored(file: string): boolean {
  const parts = file.split(path.sep)
  return parts.some((p) => IGNORED_DIRS.has(p)) || IGNORED_FILE.test(parts.at(-1) ?? '')
}
