// Files a reader must see whole or not at all (a key, a mesh.yaml edited in place, a
// manifest kubectl may be reading): written under a temporary name beside the file and renamed
// over it, as rename(2) swaps a name in one step. A crash, a full disk or a second writer then
// leaves the old file or the new one, never half of either.
import {randomBytes} from 'node:crypto'
import {chmodSync, realpathSync, renameSync, rmSync, statSync, writeFileSync} from 'node:fs'

/**
 * `mode`: the file's permissions; without it, those of the file it replaces (a new file gets
 * the process's default). A symbolic link is followed: the file it names is replaced and the
 * link stays a link.
 */
export function writeFileAtomically(file: string, data: string, mode?: number): void {
  let target = file
  let kept: number | undefined
  try {
    target = realpathSync(file)
    kept = statSync(target).mode & 0o7777
  } catch {
    // No such file yet: written new.
  }
  const permissions = mode ?? kept
  // Its own name per write: two writers in one process (or two processes) never share one.
  const tmp = `${target}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`
  try {
    writeFileSync(tmp, data, {mode: permissions, flag: 'wx'})
    // The umask narrows a mode given at creation: set it as asked.
    if (permissions !== undefined) chmodSync(tmp, permissions)
    renameSync(tmp, target)
  } catch (error) {
    rmSync(tmp, {force: true})
    throw error
  }
}
