import {existsSync, mkdtempSync, readdirSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {expect, test} from 'vitest'
import {meshPaths, removeState, writeState, type MeshState} from '../../src/sim/control/state-file.js'

test('removeState also removes the temp file of a daemon killed between writing its state and renaming it, and nothing else', () => {
  const paths = meshPaths(mkdtempSync(path.join(os.tmpdir(), 'meshsim-state-')))
  writeState(paths, {daemon: {pid: 1}, children: []} as unknown as MeshState)
  const dir = path.dirname(paths.state)
  writeFileSync(`${paths.state}.4242.tmp`, '{"daemon": {"pid"')
  writeFileSync(path.join(dir, 'notes.tmp'), 'the user\'s')
  removeState(paths)
  expect(existsSync(paths.state)).toBe(false)
  expect(readdirSync(dir).filter((n) => n.endsWith('.tmp'))).toEqual(['notes.tmp'])
})
