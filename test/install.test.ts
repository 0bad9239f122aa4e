// docs/install.md's way to put `mesh` on the PATH, from a clean copy of the repository:
// `npm install` there (its prepare script builds dist/), `npm install -g .` into a
// temporary prefix, then `mesh` found on the PATH in another directory, with no
// meshsim package around it. Dependencies come from npm's cache when it has them
// (CI's `npm ci` has just filled it), so the run needs no network there.
import {execa} from 'execa'
import {cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {afterAll, describe, expect, test} from 'vitest'
import {ROOT} from './helpers/mesh.js'

const tmp = mkdtempSync(path.join(os.tmpdir(), 'meshsim-install-'))
afterAll(() => rmSync(tmp, {recursive: true, force: true}))

/** What a clone holds: the tracked files and the new ones git would track, as they are now. */
async function cleanCopy(to: string): Promise<void> {
  const {stdout} = await execa('git', ['ls-files', '--cached', '--others', '--exclude-standard', '-z'], {cwd: ROOT})
  for (const file of stdout.split('\0')) {
    if (!file || file === 'node_modules' || !existsSync(path.join(ROOT, file))) continue
    mkdirSync(path.dirname(path.join(to, file)), {recursive: true})
    cpSync(path.join(ROOT, file), path.join(to, file))
  }
}

describe('installing from a clone puts mesh on the PATH', () => {
  test('npm install, npm install -g ., then mesh --version, mesh init and mesh validate elsewhere', {timeout: 400_000}, async () => {
    const clone = path.join(tmp, 'meshsim')
    const prefix = path.join(tmp, 'prefix')
    const project = path.join(tmp, 'project')
    mkdirSync(project)
    await cleanCopy(clone)
    expect(existsSync(path.join(clone, 'dist'))).toBe(false)

    const npm = (args: string[], cwd: string) =>
      execa('npm', [...args, '--prefer-offline', '--no-audit', '--no-fund'], {cwd, reject: false, timeout: 300_000, env: {npm_config_loglevel: 'error'}})
    const install = await npm(['ci'], clone)
    expect(install.exitCode, install.stderr).toBe(0)
    expect(existsSync(path.join(clone, 'dist/commands/up.js')), 'npm install ran the prepare script (the build)').toBe(true)
    const global = await npm(['install', '-g', '--prefix', prefix, '.'], clone)
    expect(global.exitCode, global.stderr).toBe(0)

    // Found by name on the PATH, in a directory with no package.json: what a user's shell does.
    const env = {PATH: `${path.join(prefix, 'bin')}${path.delimiter}${process.env.PATH}`, NO_COLOR: '1'}
    const mesh = (...args: string[]) => execa('mesh', args, {cwd: project, env, reject: false, timeout: 60_000})
    const version = await mesh('--version')
    expect(version.exitCode, version.stderr).toBe(0)
    const {version: expected} = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {version: string}
    expect(version.stdout).toContain(`meshsim/${expected}`)
    const list = await mesh('init', '--list')
    expect(list.stdout).toMatch(/^shop\s/m)
    const init = await mesh('init', '--template', 'shop')
    expect(init.exitCode, init.stderr).toBe(0)
    expect(existsSync(path.join(project, 'mesh.yaml'))).toBe(true)
    expect(existsSync(path.join(project, 'frontend/server.js'))).toBe(true)
    const validate = await mesh('validate')
    expect(validate.exitCode, validate.stderr + validate.stdout).toBe(0)
  })
})
