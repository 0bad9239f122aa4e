// README's five-minute tour, run line by line as written on the shop template: each `mesh`
// line must exit 0 and the curl must be answered 200. Two things differ from a reader's
// terminal, both forced by tests sharing a machine: the ingress port (8000 in the tour) is
// a free one, and ID is an id `mesh traces` printed, as the tour tells the reader to pick.
import {mkdtempSync, readFileSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {afterAll, describe, expect, test} from 'vitest'
import {freePort, get, mesh, ROOT} from '../helpers/mesh.js'

/** The lines of README's tour block, comments stripped. */
function tourLines(): string[] {
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8')
  const block = /<!-- tour:[^\n]*-->\n```sh\n([\s\S]*?)```/.exec(readme)
  if (!block) throw new Error('README.md has no <!-- tour: --> block')
  return block[1]
    .split('\n')
    .map((line) => line.replace(/\s+#.*$/, '').trim())
    .filter(Boolean)
}

describe("README's five-minute tour", () => {
  let dir: string | undefined
  afterAll(async () => {
    if (dir) await mesh(dir, ['down'])
  })

  test('every line runs as written', {timeout: 240_000}, async () => {
    const lines = tourLines()
    expect(lines[0]).toBe('mkdir shop && cd shop')
    dir = mkdtempSync(path.join(os.tmpdir(), 'meshsim-tour-'))
    const port = await freePort()
    for (const line of lines.slice(1)) {
      const words = line.split(/\s+/)
      if (words[0] === 'curl') {
        expect(words[1]).toBe('localhost:8000/')
        const res = await get(`http://127.0.0.1:${port}/`)
        expect(res.status, res.text).toBe(200)
        continue
      }
      // A line of another kind must be taught to this test, never skipped.
      expect(words[0], line).toBe('mesh')
      const args = await Promise.all(words.slice(1).map(async (w) => (w === 'ID' ? latestTraceId(dir!) : w)))
      const run = await mesh(dir, args, {timeoutMs: 120_000})
      expect(run.exitCode, `${line}\n${run.stdout}\n${run.stderr}`).toBe(0)
      if (args[0] === 'init') {
        const file = path.join(dir, 'mesh.yaml')
        const yaml = readFileSync(file, 'utf8')
        expect(yaml).toMatch(/port: 8000/)
        writeFileSync(file, yaml.replace(/port: 8000/, `port: ${port}`))
      }
    }
    expect(lines.at(-1)).toBe('mesh down')
    dir = undefined
  })
})

async function latestTraceId(dir: string): Promise<string> {
  const list = await mesh(dir, ['traces', '--limit', '1', '--json'])
  expect(list.exitCode, list.stderr).toBe(0)
  const [first] = JSON.parse(list.stdout) as {traceId: string}[]
  expect(first, 'mesh traces listed no trace').toBeDefined()
  return first.traceId.slice(0, 12)
}
