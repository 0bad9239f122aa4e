// Instance logs live in .mesh/logs/<instance>.log, written by the processes
// themselves (the daemon hands them the file), so logs survive a dead daemon.
// Each run of the mesh has its own files: a new mesh moves the last run's into
// previous/ (as compose keeps a removed container's logs apart from the new one's).
import {closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, renameSync, rmSync, statSync} from 'node:fs'
import path from 'node:path'
import type {MeshPaths} from './state-file.js'

export function tailLines(file: string, lines: number): string[] {
  try {
    const text = readFileSync(file, 'utf8').trimEnd()
    return text ? text.split('\n').slice(-lines) : []
  } catch {
    return []
  }
}

export const PREVIOUS_RUN = 'previous'

/**
 * Moves the last run's `*.log` files in `dir` to `dir/previous/` (replacing an older
 * previous/), so a new mesh starts with empty logs. Only for a mesh that is starting,
 * never for one that is running: its instances are writing to these files.
 */
export function rotateLogs(dir: string): void {
  const logs = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.log')) : []
  if (logs.length === 0) return
  const previous = path.join(dir, PREVIOUS_RUN)
  rmSync(previous, {recursive: true, force: true})
  mkdirSync(previous)
  for (const file of logs) renameSync(path.join(dir, file), path.join(previous, file))
}

/** Instance name → log file, for one service or all; `catalog` never matches `catalog-api`'s files. */
export function instanceLogFiles(paths: MeshPaths, services: string[], only?: string): Map<string, string> {
  const out = new Map<string, string>()
  if (!existsSync(paths.logs)) return out
  // Longest service name first, so `catalog-api-v1-0` is attributed to `catalog-api`, not `catalog`.
  const known = [...services].sort((a, b) => b.length - a.length)
  for (const file of readdirSync(paths.logs).sort()) {
    if (!file.endsWith('.log')) continue
    const instance = file.slice(0, -4)
    const service = known.find((s) => instance.startsWith(`${s}-`))
    if (only && service !== only) continue
    out.set(instance, path.join(paths.logs, file))
  }
  return out
}

/** Reads what was appended to each file since the last call; a file that shrank is read from the start. */
export class LogFollower {
  private readonly offsets = new Map<string, number>()
  private readonly partial = new Map<string, string>()

  constructor(fromEnd: boolean, files: Iterable<string>) {
    for (const f of files) this.offsets.set(f, fromEnd && existsSync(f) ? statSync(f).size : 0)
  }

  add(file: string): void {
    if (!this.offsets.has(file)) this.offsets.set(file, 0)
  }

  poll(onLine: (file: string, line: string) => void): void {
    for (const [file, offset] of this.offsets) {
      let size: number
      try {
        size = statSync(file).size
      } catch {
        continue
      }
      let from = offset
      if (size < from) from = 0
      if (size === from) continue
      const fd = openSync(file, 'r')
      const buf = Buffer.alloc(size - from)
      readSync(fd, buf, 0, buf.length, from)
      closeSync(fd)
      this.offsets.set(file, size)
      const text = (this.partial.get(file) ?? '') + buf.toString('utf8')
      const lines = text.split('\n')
      this.partial.set(file, lines.pop() ?? '')
      for (const line of lines) onLine(file, line)
    }
  }
}
