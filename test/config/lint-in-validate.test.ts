import {describe, expect, test} from 'vitest'
import {formatIssue} from '../../src/sim/config/config-error.js'
import {parseConfig} from '../../src/sim/config/load-config.js'

describe('resilience lint in mesh validate', () => {
  test('warnings carry the position of the policy they are about, and never block', () => {
    const source = `name: lint
ingress: {port: 8000, routes: [{prefix: /, service: a}]}
services:
  a:
    simulate: {calls: [{service: b}]}
    policy:
      timeout: 1s
      retries: {attempts: 3, perTryTimeout: 500ms}
  b:
    simulate: {latency: 1ms}
    policy:
      retries: {attempts: 2}
`
    const {config, issues} = parseConfig(source, '/tmp/mesh.yaml')
    expect(config).toBeDefined()
    const lines = issues.map((i) => formatIssue(i, '/tmp'))
    expect(lines).toContain(
      'mesh.yaml:8:16 services.a.policy.retries: warning: perTryTimeout 500ms × 4 tries (1 + 3 retries) = 2s exceeds timeout 1s: only 2 full tries fit, so the last retries are cut short. Raise timeout to at least 2s or lower attempts or perTryTimeout.',
    )
    expect(lines.some((l) => l.startsWith('mesh.yaml:12:16 services.b.policy.retries: warning: a → b: up to 12 calls to b per user request (4 × 3 tries)'))).toBe(true)
    expect(issues.every((i) => i.severity === 'warning')).toBe(true)
  })
})
