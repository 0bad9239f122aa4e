// docs/policies.md's table of the mesh's own replies lists exactly the (status, flag) pairs
// the data plane can answer with: each `new ProxyError(STATUS, 'FLAG'` in src/sim/proxy.
import {readFileSync} from 'node:fs'
import path from 'node:path'
import {expect, test} from 'vitest'
import {ROOT} from '../helpers/mesh.js'
import {sourceFiles} from '../helpers/repo-files.js'

/** "503 UF", or "* FI" for a status the reply takes from elsewhere (an abort fault's). */
function pairsInCode(): Set<string> {
  const pairs = new Set<string>()
  for (const file of sourceFiles(path.join(ROOT, 'src/sim/proxy'))) {
    for (const m of readFileSync(file, 'utf8').matchAll(/new ProxyError\(\s*(\w+),\s*'([A-Z]+)'/g)) pairs.add(`${/^\d+$/.test(m[1]) ? m[1] : '*'} ${m[2]}`)
  }
  return pairs
}

function pairsInDocs(): Set<string> {
  const doc = readFileSync(path.join(ROOT, 'docs/policies.md'), 'utf8')
  const table = doc.split('## Replies the mesh makes itself')[1]
  const pairs = new Set<string>()
  for (const m of table.matchAll(/^\| ([^|]+) \| `([A-Z]+)` \|/gm)) pairs.add(`${/^\d+$/.test(m[1].trim()) ? m[1].trim() : '*'} ${m[2]}`)
  return pairs
}

test("the table of the mesh's replies is every status and flag the data plane answers with, and only those", () => {
  const code = pairsInCode()
  expect(code.size).toBeGreaterThan(8)
  expect([...pairsInDocs()].sort()).toEqual([...code].sort())
})
