import {describe, expect, test} from 'vitest'
import {formatIssue} from '../../src/sim/config/config-error.js'
import {parseConfig} from '../../src/sim/config/load-config.js'

describe('faults.inject in mesh.yaml', () => {
  const mesh = (faults: string) => `name: f
services:
  payments:
    simulate: {latency: 1ms}
faults:
${faults}
`

  test('standing faults parse into FaultSpecs', () => {
    const {config, issues} = parseConfig(mesh('  allowHeaders: true\n  inject:\n    - {service: payments, delay: 300ms, percent: 50}\n    - {service: payments, abort: 503, first: 2}'), '/tmp/mesh.yaml')
    expect(issues).toEqual([])
    expect(config!.faults.allowHeaders).toBe(true)
    expect(config!.faults.inject).toMatchObject([
      {service: 'payments', kind: 'delay', delayMs: 300, percent: 50},
      {service: 'payments', kind: 'abort', status: 503, first: 2},
    ])
  })

  test('a bad entry is reported at its position; kill is refused as a standing fault', () => {
    const {config, issues} = parseConfig(mesh('  inject:\n    - {service: paymnts, delay: 300ms}\n    - {service: payments, kill: 1}'), '/tmp/mesh.yaml')
    expect(config).toBeUndefined()
    const lines = issues.map((i) => formatIssue(i, '/tmp'))
    expect(lines[0]).toMatch(/^mesh\.yaml:7:\d+ faults\.inject\[0\]\.service: .*"paymnts".*payments/)
    expect(lines[1]).toMatch(/^mesh\.yaml:8:\d+ faults\.inject\[1\]/)
  })
})

describe('faults.inject on a protocol: tcp service', () => {
  test('a path or header selector is an error at it (a connection has neither); a plain delay is fine', () => {
    const source = `name: f
services:
  db: {protocol: tcp, command: postgres}
faults:
  inject:
    - {service: db, delay: 100ms, path: /x}
    - {service: db, delay: 100ms}
`
    const {issues} = parseConfig(source, '/tmp/mesh.yaml')
    expect(issues.map((i) => formatIssue(i, '/tmp'))).toEqual([
      'mesh.yaml:6:41 faults.inject[0].path: "db" is protocol: tcp: its connections have no path to select, so the fault would never act',
    ])
  })
})
