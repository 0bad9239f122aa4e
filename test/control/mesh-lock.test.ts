import {spawn} from 'node:child_process'
import {once} from 'node:events'
import {chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {describe, expect, it} from 'vitest'
import {acquireMeshLock, liveLockOwner} from '../../src/sim/control/mesh-lock.js'
import {meshPaths} from '../../src/sim/control/state-file.js'
import {processTable} from '../../src/sim/supervisor/process-table.js'

const fresh = () => meshPaths(mkdtempSync(path.join(tmpdir(), 'meshsim-lock-')))

/** A lock as a process that has exited left it. */
async function lockOfDeadProcess(paths: ReturnType<typeof meshPaths>, role: 'daemon' | 'command') {
  const child = spawn('sleep', ['5'], {stdio: 'ignore'})
  const startTime = (await processTable().read()).get(child.pid!)!.startTime
  child.kill('SIGKILL')
  await once(child, 'exit')
  const lock = await acquireMeshLock(paths, {role: 'daemon', name: 'setup'})
  lock.release()
  writeFileSync(paths.lock, JSON.stringify({pid: child.pid, startTime, processTable: processTable().kind, role, name: 'shop'}))
}

describe('mesh lock', () => {
  it('is held by one owner: a second daemon is refused, naming the mesh and the pid; released, it is free again', async () => {
    const paths = fresh()
    const lock = await acquireMeshLock(paths, {role: 'daemon', name: 'shop'})
    expect(liveLockOwner(paths)).toMatchObject({pid: process.pid, role: 'daemon', name: 'shop'})
    await expect(acquireMeshLock(paths, {role: 'daemon', name: 'shop'})).rejects.toThrow(`mesh "shop" is already running here (daemon pid ${process.pid}).`)
    // A command does not wait out a daemon's hold: it lasts as long as the mesh.
    await expect(acquireMeshLock(paths, {role: 'command', name: 'mesh down'}, 5_000)).rejects.toMatchObject({code: 'MESH_ALREADY_RUNNING'})
    lock.release()
    expect(existsSync(paths.lock)).toBe(false)
    expect(liveLockOwner(paths)).toBeUndefined()
    ;(await acquireMeshLock(paths, {role: 'command', name: 'mesh down'})).release()
  })

  it('takes over a lock whose owner has exited, and one that is not a lock at all', async () => {
    const paths = fresh()
    await lockOfDeadProcess(paths, 'daemon')
    expect(liveLockOwner(paths)).toBeUndefined()
    const lock = await acquireMeshLock(paths, {role: 'daemon', name: 'shop'})
    expect(JSON.parse(readFileSync(paths.lock, 'utf8')).pid).toBe(process.pid)
    lock.release()

    for (const garbage of ['garbage', 'null', '42']) {
      writeFileSync(paths.lock, garbage)
      ;(await acquireMeshLock(paths, {role: 'daemon', name: 'shop'})).release()
    }
    // No temp file or moved-aside lock is left behind, and released, no lock either.
    expect(readdirSync(paths.root).filter((f) => f.startsWith('mesh.lock'))).toEqual([])
  })

  it('a pid that now names another process (a wrong start time) does not hold the lock', async () => {
    const paths = fresh()
    const lock = await acquireMeshLock(paths, {role: 'daemon', name: 'shop'})
    const owner = JSON.parse(readFileSync(paths.lock, 'utf8'))
    writeFileSync(paths.lock, JSON.stringify({...owner, startTime: String(Number(owner.startTime) + 1)}))
    expect(liveLockOwner(paths)).toBeUndefined()
    // Not ours any more (its contents changed): release leaves it alone.
    lock.release()
    expect(existsSync(paths.lock)).toBe(true)
    ;(await acquireMeshLock(paths, {role: 'daemon', name: 'shop'})).release()
  })

  it('a stale lock found by two: one takes it over, the other is refused', async () => {
    const paths = fresh()
    await lockOfDeadProcess(paths, 'daemon')
    const results = await Promise.allSettled([acquireMeshLock(paths, {role: 'daemon', name: 'a'}), acquireMeshLock(paths, {role: 'daemon', name: 'b'})])
    // One process, so both tries name it; what matters is that only one succeeded.
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1)
  })

  it('.mesh is made private (0700), an existing one closed too', async () => {
    const paths = fresh()
    mkdirSync(paths.root, {mode: 0o755})
    chmodSync(paths.root, 0o755)
    ;(await acquireMeshLock(paths, {role: 'command', name: 'mesh down'})).release()
    expect(statSync(paths.root).mode & 0o777).toBe(0o700)
  })
})
