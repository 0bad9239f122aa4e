// `mesh export kubernetes` through the real CLI: the loss report on stderr and in --json,
// --strict failing on a loss with exit 2 and nothing written, --out DIR's files.
import {existsSync, mkdtempSync, readdirSync, readFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {beforeAll, expect, test} from 'vitest'
import {writeTemplate} from '../../src/sim/templates/templates.js'
import {mesh} from '../helpers/mesh.js'

let shop: string
let minimal: string

beforeAll(async () => {
  shop = mkdtempSync(path.join(os.tmpdir(), 'meshsim-export-shop-'))
  minimal = mkdtempSync(path.join(os.tmpdir(), 'meshsim-export-minimal-'))
  await writeTemplate('shop', shop)
  await writeTemplate('minimal', minimal)
})

test('a loss is on stderr and in --json, and the manifests are written all the same', async () => {
  const run = await mesh(shop, ['export', 'kubernetes', '--mesh', 'istio', '--json'])
  expect(run.exitCode, run.stderr).toBe(0)
  const out = JSON.parse(run.stdout) as {losses: Array<{path: string; reason: string; nearest: string}>; objects: Array<{kind: string; name: string}>; manifests: string}
  expect(out.losses.map((l) => l.path)).toContain('services.payments.policy.retries.budget')
  expect(run.stderr).toContain('services.payments.policy.retries.budget: Istio has no retry budget')
  expect(out.objects).toContainEqual({kind: 'DestinationRule', name: 'payments', file: 'payments'})
  expect(out.manifests).toContain('kind: VirtualService')
})

test('--strict: any loss is an error, exit 2, with the losses listed and nothing written', async () => {
  const dir = path.join(shop, 'k8s-strict')
  const run = await mesh(shop, ['export', 'kubernetes', '--mesh', 'istio', '--strict', '--out', dir])
  expect(run.exitCode).toBe(2)
  expect(run.stderr).toContain('services.payments.policy.retries.budget')
  expect(run.stderr).toMatch(/--strict: \d+ settings of mesh\.yaml cannot be exported exactly to Kubernetes with Istio; nothing was written/)
  expect(existsSync(dir)).toBe(false)
  const json = await mesh(shop, ['export', 'kubernetes', '--strict', '--json'])
  expect(json.exitCode).toBe(2)
  expect(JSON.parse(json.stdout).error.code).toBe('MESH_EXPORT_LOSSY')
})

test('--strict passes a mesh with nothing lost; --out DIR writes a file per service, the namespace first', async () => {
  const dir = path.join(minimal, 'k8s')
  const run = await mesh(minimal, ['export', 'kubernetes', '--mesh', 'istio', '--strict', '--out', dir, '--namespace', 'minimal-dev'])
  expect(run.exitCode, run.stderr).toBe(0)
  expect(readdirSync(dir).sort()).toEqual(['00-namespace.yaml', 'hello.yaml', 'ingress.yaml', 'world.yaml'])
  expect(readFileSync(path.join(dir, '00-namespace.yaml'), 'utf8')).toMatch(/kind: Namespace\nmetadata:\n {2}name: minimal-dev\n/)
  const stdout = await mesh(minimal, ['export', 'kubernetes', '--mesh', 'istio', '--namespace', 'minimal-dev'])
  // The same documents, whichever way they are written.
  const docs = (text: string) => text.split(/^---\n/m).slice(1)
  const files = ['00-namespace.yaml', 'hello.yaml', 'world.yaml', 'ingress.yaml'].flatMap((f) => docs(readFileSync(path.join(dir, f), 'utf8')))
  // (execa drops the last newline of stdout.)
  expect(files).toEqual(docs(`${stdout.stdout}\n`))
})

test('--out naming a file is bad input, said as such', async () => {
  const run = await mesh(minimal, ['export', 'kubernetes', '--out', 'mesh.yaml'])
  expect(run.exitCode).toBe(2)
  expect(run.stderr).toContain('cannot write the manifests into')
  expect(run.stderr).toContain('--out takes a directory')
})
