import {it} from 'vitest'
import {readFileSync} from 'node:fs'
import {parseConfig, formatIssue} from '../../src/sim/config/load-config.js'
it('scratch', () => {
  const src = readFileSync('/tmp/s.yaml', 'utf8')
  const r = parseConfig(src, '/work/demo/mesh.yaml')
  console.log(r.issues.map((i) => formatIssue(i, '/work/demo')).join('\n'))
  console.log(JSON.stringify(r.config, null, 1))
})
