// Watches a service's `watch:` paths for `mesh up --watch` (as `docker compose up --watch`
// does a service's develop.watch): edits that arrive together — an editor's save, a
// `git checkout`, a build writing many files — become one change, reported once the
// files have been quiet for `quietMs`. Dependencies, VCS data and editor droppings are
// not changes to the code.
import {type Dirent, type FSWatcher, readdirSync, statSync, watch} from 'node:fs'
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
  /** One inotify watch per directory: node's own recursive watch on Linux (Node 20) watches every file, node_modules included. */
  private readonly watchers = new Map<string, FSWatcher>()
  /** Directories watched whole (a `watch:` directory and those below it). */
  private readonly trees = new Set<string>()
  /** Files watched on their own, through their directory's watch. */
  private readonly files = new Set<string>()
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
      if (statSync(p).isDirectory()) this.watchTree(p)
      else {
        // A file through its directory: an editor that saves by writing a new file and renaming
        // it over the old one would leave a watch on the file itself watching the old inode.
        this.files.add(p)
        this.watchDir(path.dirname(p))
      }
    }
    return this
  }

  close(): void {
    for (const w of this.watchers.values()) w.close()
    this.watchers.clear()
    this.timer?.cancel()
    this.timer = undefined
    this.changed.clear()
  }

  /** A directory and every directory below it that is not ignored; new ones are added as they appear. */
  private watchTree(dir: string): void {
    if (this.trees.has(dir)) return
    let entries: Dirent[]
    try {
      entries = readdirSync(dir, {withFileTypes: true})
    } catch {
      return
    }
    this.trees.add(dir)
    this.watchDir(dir)
    for (const e of entries) if (e.isDirectory() && !IGNORED_DIRS.has(e.name)) this.watchTree(path.join(dir, e.name))
  }

  private watchDir(dir: string): void {
    if (this.watchers.has(dir)) return
    const w = watch(dir, (event, name) => {
      if (!name) return
      const file = path.join(dir, name.toString())
      const whole = this.trees.has(dir)
      if ((!whole && !this.files.has(file)) || ignored(file)) return
      // A directory made inside a watched one is watched too.
      if (whole && event === 'rename') {
        try {
          if (statSync(file).isDirectory()) this.watchTree(file)
        } catch {
          // Gone again already.
        }
      }
      this.note(file)
    })
    // A watched directory removed (a branch switch) must not take the daemon down.
    w.on('error', () => {
      w.close()
      this.watchers.delete(dir)
      this.trees.delete(dir)
    })
    this.watchers.set(dir, w)
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
