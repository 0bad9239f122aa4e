// The shop template's capacity plan (issue #24, item 7), as its page tells it: the command
// written in templates/shop/scenarios/capacity-plan.md, run on what `mesh init --template shop`
// writes, gives the table and the plan the page shows. Virtual time: six runs of 10,000
// requests (5 s of 2,000/s each) take about 5 s of CPU, on the sweep's worker threads.
import {mkdtempSync, readFileSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {afterAll, expect, test} from 'vitest'
import {mesh, ROOT} from '../helpers/mesh.js'

const PAGE = readFileSync(path.join(ROOT, 'templates/shop/scenarios/capacity-plan.md'), 'utf8')
const blocks = [...PAGE.matchAll(/^```(\w*)\n([\s\S]*?)^```$/gm)].map((m) => ({lang: m[1], text: m[2]}))
const command = blocks.find((b) => b.lang === 'sh')!.text.trim()
const shown = blocks.find((b) => b.lang === '' && b.text.startsWith('Sweep of'))!.text

/** Each row's varied values and verdict: what the plan is read from (the figures may move with the models' code). */
const verdicts = (table: string) =>
  table
    .split('\n')
    .filter((l) => /^\d+ +\d+ /.test(l))
    .map((l) => `${l.split(/ +/, 2).join(' ')} ${/\d+ held|\d+ of \d+ failed/.exec(l)?.[0]} ${/\(needs ≥ \d+\)/.exec(l)?.[0] ?? ''}`.trim())

const dir = mkdtempSync(path.join(tmpdir(), 'capacity-plan-'))
afterAll(() => rmSync(dir, {recursive: true, force: true}))

test('the shop template needs catalog ×2 and payments ×1 for 2,000 requests/s at p99 ≤ 250 ms, as its page says', {timeout: 60_000}, async () => {
  expect((await mesh(dir, ['init', '--template', 'shop'])).exitCode).toBe(0)
  expect(command.startsWith('mesh sim ')).toBe(true)
  const r = await mesh(dir, command.split(/\s+/).slice(1))
  expect(r.stderr).toBe('')
  expect(r.exitCode).toBe(0)
  expect(verdicts(r.stdout)).toEqual([
    '1 1 2 of 2 failed (needs ≥ 2)',
    '1 2 2 of 2 failed (needs ≥ 2)',
    '2 1 2 held',
    '2 2 2 held',
    '3 1 2 held',
    '3 2 2 held',
  ])
  const answer = 'the first: services.catalog.replicas=2 services.payments.replicas=1'
  expect(r.stdout).toContain(answer)
  expect(PAGE).toContain('**The plan: catalog 2 replicas, payments 1.**')
  // The page's table: the same rows and verdicts (its figures are seed 1's).
  expect(verdicts(shown)).toEqual(verdicts(r.stdout))
  expect(shown).toContain(answer)
})
