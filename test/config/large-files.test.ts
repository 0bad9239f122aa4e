// What `mesh validate` does with files no one should write but someone will (generated,
// fuzzed, a typo with extra zeros): a clear error at the line, never a hang or a crash.
// How the time grows with size is measured by bench/validate-scale.js, not here.
import {describe, expect, it} from 'vitest'
import {parseConfig} from '../../src/sim/config/load-config.js'
import {MAX_NESTING} from '../../src/sim/config/interpolate.js'
import {MAX_NAME_LENGTH, MAX_REPLICAS} from '../../src/sim/config/mesh-schema.js'
import {FILE, parsed, problems, yaml} from './helpers.js'

describe('caps on what is absurd', () => {
  it('replicas above the cap, per version and per service', () => {
    expect(MAX_REPLICAS).toBe(1000)
    const source = yaml('name: t', 'services:', '  a: {command: x, replicas: 1000}', '  b: {command: x, replicas: 1001}', '  c:', '    command: x', '    versions: {v1: {replicas: 50000}}')
    expect(problems(source)).toEqual([
      'mesh.yaml:4:29 services.b.replicas: 1001 replicas is more than one machine runs; at most 1000 instances of each version',
      'mesh.yaml:7:31 services.c.versions.v1.replicas: 50000 replicas is more than one machine runs; at most 1000 instances of each version',
    ])
  })

  it('service and version names longer than a DNS label (63)', () => {
    const ok = 'a'.repeat(MAX_NAME_LENGTH)
    const long = 'a'.repeat(MAX_NAME_LENGTH + 1)
    expect(parsed(yaml('name: t', 'services:', `  ${ok}:`, '    command: x', `    versions: {${'v'.repeat(MAX_NAME_LENGTH)}: {}}`)).services[0].name).toBe(ok)
    expect(problems(yaml('name: t', 'services:', `  ${long}:`, '    command: x', `    versions: {${'v'.repeat(70)}: {}}`))).toEqual([
      `mesh.yaml:3:3 services.${long}: service name "aaaaaaaaaaaaaaaaaaaa…" is 64 characters; names are DNS labels of at most 63`,
      `mesh.yaml:5:16 services.${long}.versions.${'v'.repeat(70)}: version name "vvvvvvvvvvvvvvvvvvvv…" is 70 characters; names are DNS labels of at most 63`,
    ])
  })

  it('${…} nested 5,000 deep is an error at its value, not "Maximum call stack size exceeded"', () => {
    const deep = (n: number) => '${B:-'.repeat(n) + 'x' + '}'.repeat(n)
    expect(problems(yaml('name: t', 'services:', '  a:', '    command: x', `    env: {A: "${deep(5000)}"}`))).toEqual([
      `mesh.yaml:5:14 services.a.env.A: \${…} is nested more than ${MAX_NESTING} deep; a default inside a default this deep is not a real configuration`,
    ])
    // At the limit it is still substituted.
    expect(parsed(yaml('name: t', 'services:', '  a:', '    command: x', `    env: {A: "${deep(MAX_NESTING)}"}`)).services[0].versions[0].env).toEqual({A: 'x'})
  })
})

describe('large files', () => {
  it('a 5,000-service call chain: no stack overflow in the cycle check or the retry lint, whose warning shows the path by its ends', () => {
    const lines = ['name: t', 'ingress: {port: 0, routes: [{prefix: /, service: s0}]}', 'services:']
    for (let i = 0; i < 5000; i++) lines.push(`  s${i}: {simulate: {calls: [${i + 1 < 5000 ? `{service: s${i + 1}}` : ''}]}, policy: {retries: {attempts: 1}}}`)
    const result = parseConfig(yaml(...lines), FILE, {})
    expect(result.config?.services).toHaveLength(5000)
    const last = result.issues.find((i) => i.path === 'services.s4999.policy.retries')!
    expect(last.message).toMatch(/^s0 → … \(4987 more\) → s4988 → s4989 → .* → s4999: up to Infinity calls to s4999 per user request \(… × 2 × 2 × 2 × 2 × 2 × 2 × 2 × 2 × 2 × 2 × 2 × 2 tries\)/)
  })

  it('a 5,000-service dependency cycle is reported once, found without recursion', () => {
    const lines = ['name: t', 'services:']
    for (let i = 0; i < 5000; i++) lines.push(`  s${i}: {command: x, dependsOn: [s${(i + 1) % 5000}]}`)
    const found = problems(yaml(...lines))
    expect(found).toHaveLength(1)
    expect(found[0]).toMatch(/^mesh\.yaml:3:32 services\.s0\.dependsOn\[0\]: dependency cycle: s0 → s1 → .* → s4999 → s0$/)
  })

  it('duplicate keys are still found (the yaml parser\'s own check is off: it is quadratic), in any map', () => {
    expect(problems(yaml('name: t', 'services:', '  a: {command: x}', '  b: {command: x, env: {X: 1, Y: 2, X: 3}}', '  a: {command: y}'))).toEqual([
      'mesh.yaml:4:37 map keys must be unique',
      'mesh.yaml:5:3 map keys must be unique',
    ])
  })

  it('an alias is the last anchor of its name before it, whatever the number of anchors', () => {
    const source = yaml('name: t', 'x-a: &cmd node one.js', 'services:', '  a: {command: *cmd}', '  b: {command: &cmd node two.js}', '  c: {command: *cmd}')
    const result = parseConfig(source, FILE, {})
    expect(result.issues.filter((i) => i.severity === 'error').map((i) => i.message)).toEqual(['unknown key "x-a"; expected one of name, ingress, faults, telemetry, security, functions, simulation, services'])
    const commands = parseConfig(yaml('name: t', 'services:', '  a: {command: &cmd node one.js}', '  b: {command: *cmd}', '  c: {command: &cmd node two.js}', '  d: {command: *cmd}'), FILE, {}).config!.services
    expect(commands.map((s) => (s.versions[0].workload as {command: string}).command)).toEqual(['node one.js', 'node one.js', 'node two.js', 'node two.js'])
  })
})
