// One mesh per directory: `.mesh/mesh.lock` names the process that owns the mesh here.
// The daemon holds it for its whole life (from before it writes the token until after it
// removed state.json); a CLI holds it only for the few moments it works on a mesh whose
// daemon is gone (`mesh up` cleaning up after a dead daemon, `mesh down` doing so).
// Everything else a user can run at the same time (apply, stop, start, deploys) goes
// through the daemon, which puts them in order itself: no other lock is needed.
//
// Created with link(2) from a file already written: the lock appears whole or not at all,
// and of two processes only one can create it. A lock whose owner is gone (not running,
// or its pid now names another process) is stale and taken over.
import {randomBytes} from 'node:crypto'
import {linkSync, readFileSync, renameSync, rmSync, writeFileSync} from 'node:fs'
import {MeshError} from '../errors.js'
import {type ProcessRef, stillRuns} from '../supervisor/process-identity.js'
import {processTable, type ProcessTableKind} from '../supervisor/process-table.js'
import {ensureMeshDir, type MeshPaths} from './state-file.js'

export interface LockOwner extends ProcessRef {
  /** The table startTime was read from (they are comparable only within one). */
  processTable: ProcessTableKind
  /** A daemon owns a running mesh; a command only cleans up after one. */
  role: 'daemon' | 'command'
  /** The mesh's name (a daemon) or the command (`mesh down`). */
  name: string
}

/** The lock's owner while it runs; undefined when there is no lock or its owner is gone. */
export function liveLockOwner(paths: MeshPaths): LockOwner | undefined {
  const owner = readOwner(paths.lock)
  return owner && ownerRuns(owner) ? owner : undefined
}

function ownerRuns(owner: LockOwner): boolean {
  return stillRuns(processTable(owner.processTable).readSync(), owner)
}

const sameOwner = (a: ProcessRef, b: ProcessRef) => a.pid === b.pid && a.startTime === b.startTime

function readOwner(file: string): LockOwner | undefined {
  try {
    const owner = JSON.parse(readFileSync(file, 'utf8')) as LockOwner | null
    // Valid JSON that is no owner (`null`, a number) is garbage too, not a crash.
    return typeof owner?.pid === 'number' && typeof owner.startTime === 'string' ? owner : undefined
  } catch {
    return undefined
  }
}

export class MeshLock {
  private released = false
  constructor(
    private readonly file: string,
    readonly owner: LockOwner,
  ) {}

  /** Idempotent; removes the lock only while it is still ours. */
  release(): void {
    if (this.released) return
    this.released = true
    const now = readOwner(this.file)
    if (now && sameOwner(now, this.owner)) rmSync(this.file, {force: true})
  }
}

/** The error a second owner gets: who holds the mesh here. */
export function lockedError(owner: LockOwner): MeshError {
  return owner.role === 'daemon'
    ? new MeshError('MESH_ALREADY_RUNNING', `mesh "${owner.name}" is already running here (daemon pid ${owner.pid}).`, {
        hints: ['See it with `mesh status`; stop it with `mesh down`.'],
      })
    : new MeshError('MESH_LOCKED', `\`${owner.name}\` (pid ${owner.pid}) is cleaning up the mesh here.`, {hints: ['Run the command again in a moment.']})
}

/**
 * Takes the lock or throws lockedError. A stale lock (owner gone) is taken over; `waitMs`
 * waits for a command's short hold to end (a daemon's never does: it fails at once).
 */
export async function acquireMeshLock(paths: MeshPaths, who: {role: LockOwner['role']; name: string}, waitMs = 0): Promise<MeshLock> {
  ensureMeshDir(paths)
  return acquireLockFile(paths.lock, who, waitMs)
}

/**
 * The same lock as a file of the caller's choosing (its directory must exist), for other work
 * one process at a time may do (`mesh export --out DIR`); `held` is the error when it is not
 * free within `waitMs`.
 */
export async function acquireLockFile(lock: string, who: {role: LockOwner['role']; name: string}, waitMs: number, held: (owner: LockOwner) => MeshError = lockedError): Promise<MeshLock> {
  const table = processTable()
  const self = table.readSync().get(process.pid)
  if (!self) throw new MeshError('MESH_PS_FAILED', `cannot find this process (pid ${process.pid}) in the process table (${table.kind}).`)
  const owner: LockOwner = {pid: process.pid, startTime: self.startTime, processTable: table.kind, role: who.role, name: who.name}
  const tmp = `${lock}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`
  const deadline = Date.now() + waitMs
  try {
    writeFileSync(tmp, JSON.stringify(owner), {mode: 0o600})
    for (;;) {
      try {
        linkSync(tmp, lock)
        return new MeshLock(lock, owner)
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
      }
      const holder = readOwner(lock)
      if (holder === undefined || !ownerRuns(holder)) {
        // Not readable: a lock is linked whole, so this is one from before (or garbage); stale either way.
        takeOverStale(lock, holder)
        continue
      }
      if (holder.role === 'daemon' || Date.now() >= deadline) throw held(holder)
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  } finally {
    rmSync(tmp, {force: true})
  }
}

/**
 * Moves the stale lock aside before deleting it, and checks that what was moved is the
 * stale one: of two processes that found it stale, the slower must not delete the lock
 * the faster has just created. If it did move a fresh one, it puts it back.
 */
function takeOverStale(lock: string, stale: LockOwner | undefined): void {
  const aside = `${lock}.${process.pid}.stale`
  try {
    renameSync(lock, aside)
  } catch {
    return // Someone else moved it first; try again.
  }
  // Not known to be the stale one (the process table failed to answer, too) is put back.
  let same = false
  try {
    const moved = readOwner(aside)
    same = stale === undefined ? moved === undefined || !ownerRuns(moved) : moved !== undefined && sameOwner(moved, stale)
  } finally {
    if (!same) {
      try {
        linkSync(aside, lock)
      } catch {
        // A third process took the free slot meanwhile; the one we moved loses its lock, as it would have lost the race.
      }
    }
    rmSync(aside, {force: true})
  }
}
