#!/usr/bin/env node
// `npm run demo`: the shop template, started for real, with traffic through it.
// It writes the mesh into .demo/, starts it detached, sends requests through the
// ingress, shows `mesh status`, and stops it again (leave it up with --keep).
import {execFileSync} from 'node:child_process'
import {existsSync, mkdirSync, readFileSync, writeFileSync} from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import {fileURLToPath} from 'node:url'

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const dir = path.join(root, '.demo')
const keep = process.argv.includes('--keep')
const mesh = (...args) => execFileSync(process.execPath, [path.join(root, 'bin/run.js'), ...args], {cwd: dir, stdio: 'inherit'})

async function portFree(port) {
  return new Promise((resolve) => {
    const s = net.createServer()
    s.once('error', () => resolve(false))
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)))
  })
}

mkdirSync(dir, {recursive: true})
try {
  execFileSync(process.execPath, [path.join(root, 'bin/run.js'), 'down'], {cwd: dir, stdio: 'ignore'})
} catch {}
if (!existsSync(path.join(dir, 'mesh.yaml'))) mesh('init', '--template', 'shop')
let port = 8000
while (!(await portFree(port))) port++
const file = path.join(dir, 'mesh.yaml')
writeFileSync(file, readFileSync(file, 'utf8').replace(/^(\s*port:) \d+/m, `$1 ${port}`))

console.log(`\n$ mesh up -d   (in ${path.relative(process.cwd(), dir) || '.'})`)
mesh('up', '-d')
const url = `http://127.0.0.1:${port}/`
console.log(`\nSending 100 requests to ${url} …`)
const counts = {}
let sample
const started = performance.now()
for (let i = 0; i < 10; i++) {
  await Promise.all(
    Array.from({length: 10}, async () => {
      const res = await fetch(url)
      counts[res.status] = (counts[res.status] ?? 0) + 1
      sample ??= await res.json()
    }),
  )
}
console.log(`status codes: ${JSON.stringify(counts)} in ${Math.round(performance.now() - started)} ms`)
console.log('one response (frontend → catalog → inventory/recommendations, frontend → cart → payments):')
console.log(JSON.stringify({...sample, catalog: {...sample.catalog, pad: undefined}, cart: {...sample.cart, pad: undefined}}, null, 2))
console.log('\n$ mesh status')
mesh('status')

const capture = (...args) => execFileSync(process.execPath, [path.join(root, 'bin/run.js'), ...args], {cwd: dir, encoding: 'utf8'})
const [first] = JSON.parse(capture('traces', '--limit', '1', '--json'))
if (first) {
  console.log(`\n$ mesh trace ${first.traceId.slice(0, 12)} --why`)
  mesh('trace', first.traceId.slice(0, 12), '--why', '--width', '110')
}

console.log('\n$ mesh inject-fault payments --abort 503 --percent 30 --seed 1')
mesh('inject-fault', 'payments', '--abort', '503', '--percent', '30', '--seed', '1')
const faulted = {}
for (let i = 0; i < 10; i++) {
  await Promise.all(
    Array.from({length: 10}, async () => {
      const res = await fetch(url)
      faulted[res.status] = (faulted[res.status] ?? 0) + 1
      await res.arrayBuffer()
    }),
  )
}
console.log(`100 more requests with 30% of payments' answers aborted: ${JSON.stringify(faulted)}`)
console.log("cart calls payments with POST, which is not idempotent, so the mesh does not retry it (mesh validate warns about it):")
console.log('the failures reach the user through cart and frontend. `mesh stat` shows where they start:')
console.log('\n$ mesh stat --by service --window 60s')
mesh('stat', '--by', 'service', '--window', '60s')
mesh('clear-faults', '--all')

console.log('\n$ mesh rollout recommendations --to v2')
mesh('rollout', 'recommendations', '--to', 'v2')
if (keep) {
  console.log(`\nThe mesh keeps running: curl ${url} ; stop it with: cd .demo && npx mesh down`)
} else {
  console.log('\n$ mesh down')
  mesh('down')
  console.log('\nRun `npm run demo -- --keep` to leave it running, or `cd .demo && npx mesh up` for the foreground view.')
}
