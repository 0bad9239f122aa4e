import {mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {afterEach, describe, expect, it} from 'vitest'
import {FileWatcher, ignored} from '../../src/sim/control/file-watcher.js'
import {waitUntil} from '../supervisor/wait-until.js'

describe('FileWatcher (mesh up --watch)', {timeout: 15_000}, () => {
  const dirs: string[] = []
  const watchers: FileWatcher[] = []
  afterEach(() => {
    for (const w of watchers.splice(0)) w.close()
    for (const d of dirs.splice(0)) rmSync(d, {recursive: true, force: true})
  })

  function project() {
    const dir = mkdtempSync(path.join(tmpdir(), 'meshsim-watch-'))
    dirs.push(dir)
    mkdirSync(path.join(dir, 'src', 'lib'), {recursive: true})
    mkdirSync(path.join(dir, 'node_modules', 'dep'), {recursive: true})
    writeFileSync(path.join(dir, 'package.json'), '{}')
    return dir
  }

  it('reports a burst of edits once, after the files went quiet; dependencies and editor files are not changes', async () => {
    const dir = project()
    const reports: string[][] = []
    watchers.push(new FileWatcher({paths: [path.join(dir, 'src'), path.join(dir, 'package.json')], quietMs: 200, onChange: (f) => reports.push(f)}).start())
    writeFileSync(path.join(dir, 'src', 'server.js'), 'one')
    writeFileSync(path.join(dir, 'src', 'server.js'), 'two')
    writeFileSync(path.join(dir, 'src', 'lib', 'util.js'), 'x')
    writeFileSync(path.join(dir, 'src', '.server.js.swp'), 'vim')
    writeFileSync(path.join(dir, 'package.json'), '{"name": "x"}')
    await waitUntil('one report', () => reports.length === 1)
    expect(reports[0]).toEqual([path.join(dir, 'package.json'), path.join(dir, 'src', 'lib', 'util.js'), path.join(dir, 'src', 'server.js')])
    // Only dependencies changing: nothing to report.
    writeFileSync(path.join(dir, 'node_modules', 'dep', 'index.js'), 'y')
    writeFileSync(path.join(dir, 'src', 'server.js~'), 'backup')
    await new Promise((r) => setTimeout(r, 600))
    expect(reports).toHaveLength(1)
    watchers[0].close()
    writeFileSync(path.join(dir, 'src', 'server.js'), 'three')
    await new Promise((r) => setTimeout(r, 400))
    expect(reports).toHaveLength(1)
  })

  it('watches directories made after it started, and a single file across a save by rename', async () => {
    const dir = project()
    const reports: string[][] = []
    watchers.push(new FileWatcher({paths: [path.join(dir, 'src'), path.join(dir, 'package.json')], quietMs: 150, onChange: (f) => reports.push(f)}).start())
    mkdirSync(path.join(dir, 'src', 'routes'))
    await waitUntil('the new directory reported', () => reports.length === 1)
    writeFileSync(path.join(dir, 'src', 'routes', 'items.js'), 'x')
    await waitUntil('a file in it', () => reports.length === 2)
    expect(reports[1]).toEqual([path.join(dir, 'src', 'routes', 'items.js')])
    // As vim and many editors save: a new file renamed over the old one.
    writeFileSync(path.join(dir, 'package.json.new'), '{"v": 2}')
    renameSync(path.join(dir, 'package.json.new'), path.join(dir, 'package.json'))
    await waitUntil('the renamed-over file', () => reports.length === 3)
    expect(reports[2]).toEqual([path.join(dir, 'package.json')])
    writeFileSync(path.join(dir, 'package.json'), '{"v": 3}')
    await waitUntil('the file written again', () => reports.length === 4)
  })

  it('watches two files of one directory, and nothing else in it', async () => {
    const dir = project()
    writeFileSync(path.join(dir, 'tsconfig.json'), '{}')
    const reports: string[][] = []
    watchers.push(new FileWatcher({paths: [path.join(dir, 'package.json'), path.join(dir, 'tsconfig.json')], quietMs: 150, onChange: (f) => reports.push(f)}).start())
    writeFileSync(path.join(dir, 'README.md'), 'not watched')
    writeFileSync(path.join(dir, 'tsconfig.json'), '{"strict": true}')
    await waitUntil('the second file', () => reports.length === 1)
    writeFileSync(path.join(dir, 'package.json'), '{"v": 2}')
    await waitUntil('the first file', () => reports.length === 2)
    expect(reports).toEqual([[path.join(dir, 'tsconfig.json')], [path.join(dir, 'package.json')]])
  })

  it('knows what is beside the point', () => {
    expect(ignored('/p/node_modules/x/index.js')).toBe(true)
    expect(ignored('/p/.git/HEAD')).toBe(true)
    expect(ignored('/p/.mesh/logs/a.log')).toBe(true)
    expect(ignored('/p/src/4913')).toBe(true)
    expect(ignored('/p/src/.#server.js')).toBe(true)
    expect(ignored('/p/src/server.js')).toBe(false)
    expect(ignored('/p/src/.env')).toBe(false)
  })
})
