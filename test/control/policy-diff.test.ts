// `mesh apply` after a deploy: mesh.yaml's weights replace the split the deploy left,
// so the move is reported (it is a change, though the file's weights did not change)
// and warned about, with what to write in mesh.yaml to keep the deployed version.
import {describe, expect, test} from 'vitest'
import {deployBehindWeights, diffPolicies, formatWeights, ingressChange, liveWeightsChange, sameWeights} from '../../src/sim/control/policy-diff.js'
import {parsed, yaml} from '../config/helpers.js'
import type {DeployOutcome, DeployRecord, Strategy} from '../../src/sim/deploy/deploy-types.js'

function deploy(id: string, outcome: DeployOutcome, to = 'v2', strategy: Strategy = 'canary'): DeployRecord {
  return {id, plan: {service: 'api', to, strategy, progressDeadlineMs: 60_000}, from: ['v1'], outcome, startedAt: '', steps: []}
}

const w = (o: Record<string, number>) => new Map(Object.entries(o))

describe('the deploy behind the live weights', () => {
  test('the last promoted deploy, unless an apply has replaced its weights since', () => {
    expect(deployBehindWeights([], new Set())).toBeUndefined()
    expect(deployBehindWeights([deploy('d1', 'promoted')], new Set())?.id).toBe('d1')
    expect(deployBehindWeights([deploy('d1', 'promoted')], new Set(['d1']))).toBeUndefined()
    expect(deployBehindWeights([deploy('d1', 'promoted'), deploy('d2', 'promoted', 'v3')], new Set(['d1']))?.id).toBe('d2')
  })

  test('a rolled-back or failed deploy restored the split before it: the one before counts', () => {
    expect(deployBehindWeights([deploy('d1', 'promoted'), deploy('d2', 'rolled-back', 'v3')], new Set())?.id).toBe('d1')
    expect(deployBehindWeights([deploy('d1', 'promoted'), deploy('d2', 'failed', 'v3')], new Set(['d1']))).toBeUndefined()
    expect(deployBehindWeights([deploy('d1', 'rolled-back')], new Set())).toBeUndefined()
  })

  test('a restart, running or done, moved no weights: the deploy before it still owns them', () => {
    expect(deployBehindWeights([deploy('d1', 'promoted'), deploy('d2', 'restarted', 'v2', 'restart')], new Set())?.id).toBe('d1')
    expect(deployBehindWeights([deploy('d1', 'promoted'), deploy('d2', 'running', 'v2', 'restart')], new Set())?.id).toBe('d1')
    expect(deployBehindWeights([deploy('d1', 'restarted', 'v2', 'restart')], new Set())).toBeUndefined()
  })

  test('a deploy still running owns the weights', () => {
    expect(deployBehindWeights([deploy('d1', 'promoted'), deploy('d2', 'running', 'v3')], new Set(['d1']))?.id).toBe('d2')
  })
})

describe('apply over live weights', () => {
  const base = {service: 'api', before: w({v1: 100}), after: w({v1: 100}), declared: ['v1', 'v2']}

  test('after a promoted deploy: the move back to mesh.yaml is a change, and a warning says how to keep the deploy', () => {
    expect(liveWeightsChange({...base, live: w({v2: 100}), deploy: deploy('d3', 'promoted')})).toEqual({
      change: 'api: weights v2 100% → v1 100%, as mesh.yaml says',
      warning:
        'api: deploy d3 (canary to v2) was promoted, but mesh.yaml says v1 100%, so apply moved traffic from v2 100% back to v1 100%. ' +
        'To keep v2, set services.api.policy.weights to {v2: 100} in mesh.yaml, then run `mesh apply` again.',
    })
  })

  test('a version the deploy made from flags must be declared too', () => {
    const {warning} = liveWeightsChange({...base, live: w({v1: 0, v3: 100}), deploy: deploy('d4', 'promoted', 'v3', 'rolling')})
    expect(warning).toContain('set services.api.policy.weights to {v3: 100} in mesh.yaml and declare v3 under services.api.versions (the deploy made it from flags), then run')
  })

  test('mesh.yaml updated to what the deploy left: nothing moves, nothing to say', () => {
    expect(liveWeightsChange({...base, before: w({v1: 100}), after: w({v2: 100}), live: w({v1: 0, v2: 100}), deploy: deploy('d3', 'promoted')})).toEqual({})
  })

  test('new weights in mesh.yaml: diffPolicies already lists them, so no second change line; still warned over a deploy', () => {
    const next = {...base, after: w({v1: 50, v2: 50}), live: w({v2: 100})}
    expect(liveWeightsChange(next)).toEqual({})
    const over = liveWeightsChange({...next, deploy: deploy('d3', 'promoted')})
    expect(over.change).toBeUndefined()
    expect(over.warning).toMatch(/^api: deploy d3 \(canary to v2\) was promoted, but mesh\.yaml says v1 50%, v2 50%, so apply moved traffic from v2 100% back to v1 50%, v2 50%\./)
  })

  test('during a deploy: warned, with how to stop it', () => {
    const {warning} = liveWeightsChange({...base, live: w({v1: 75, v2: 25}), deploy: deploy('d5', 'running', 'v2', 'rolling')})
    expect(warning).toBe(
      "api: deploy d5 (rolling to v2) is still running, and apply set its weights to mesh.yaml's v1 100% underneath it. " +
        'Let the deploy end and then update mesh.yaml, or stop it with `mesh rollback api`.',
    )
  })

  test('weights compare as traffic: a version at 0 is the same as one left out', () => {
    expect(sameWeights(w({v1: 100, v2: 0}), w({v1: 100}))).toBe(true)
    expect(sameWeights(w({v1: 100 / 3, v2: 200 / 3}), w({v1: 33.333333, v2: 66.666667}))).toBe(true)
    expect(sameWeights(w({v1: 90, v2: 10}), w({v1: 100}))).toBe(false)
    expect(formatWeights(w({v1: 100 / 3, v2: 200 / 3, v3: 0}))).toBe('v1 33.33%, v2 66.67%')
  })
})

describe('what apply does to instances, and what it cannot do live', () => {
  const file = (replicas: number, extra: string[] = []) =>
    parsed(yaml('name: m', 'services:', '  api:', `    replicas: ${replicas}`, ...extra, '    versions:', '      v1: {simulate: {}}'))
  const commandFile = (command: string, env: string, port?: number) =>
    parsed(yaml('name: m', 'services:', '  web:', `    command: ${command}`, `    env: {MODE: ${env}}`, ...(port ? [`    port: ${port}`] : [])))

  test('a version a deploy added to the running config is not a mesh.yaml edit; a replicas edit is a scale', () => {
    const declared = file(1)
    const live = structuredClone(declared)
    live.services[0].versions.push({...live.services[0].versions[0], name: 'v2'})
    expect(diffPolicies(live, file(1), declared.services)).toMatchObject({notApplied: [], instances: []})
    // Compared with the running config instead, the deploy's version looked like an edit (one to undo).
    expect(diffPolicies(live, file(1)).instances).toMatchObject([{version: 'v2', removed: true}])
    const scaled = diffPolicies(live, file(3), declared.services)
    expect(scaled.notApplied).toEqual([])
    expect(scaled.instances).toEqual([{service: 'api', version: 'v1', replicas: {from: 1, to: 3}, respawn: undefined, next: file(3).services[0].versions[0]}])
  })

  test('a new command, cwd, env or simulation replaces the processes; replicas may change with it', () => {
    const was = commandFile('node a.js', 'blue')
    expect(diffPolicies(was, commandFile('node b.js', 'green')).instances).toMatchObject([{service: 'web', version: 'v1', respawn: ['command', 'env']}])
    expect(diffPolicies(was, commandFile('node a.js', 'green')).instances).toMatchObject([{respawn: ['env']}])
    const simFile = (replicas: number, errorRate: number) =>
      parsed(yaml('name: m', 'services:', '  sim:', `    replicas: ${replicas}`, `    simulate: {errorRate: ${errorRate}}`))
    expect(diffPolicies(simFile(1, 0), simFile(2, 0.5)).instances).toMatchObject([{replicas: {from: 1, to: 2}, respawn: ['simulate']}])
    expect(diffPolicies(was, was)).toMatchObject({instances: [], notApplied: []})
  })

  test('a version new in mesh.yaml is added, one gone from it removed', () => {
    const two = parsed(yaml('name: m', 'services:', '  api:', '    versions:', '      v1: {simulate: {}}', '      v2: {replicas: 2, simulate: {}}'))
    const added = diffPolicies(file(1), two)
    expect(added.notApplied).toEqual([])
    expect(added.instances).toEqual([{service: 'api', version: 'v2', added: true, next: two.services[0].versions[1]}])
    expect(diffPolicies(two, file(1)).instances).toEqual([{service: 'api', version: 'v2', removed: true, next: two.services[0].versions[1]}])
  })

  test('services new in mesh.yaml and gone from it are listed for apply to add and remove', () => {
    const two = parsed(yaml('name: m', 'services:', '  api: {simulate: {}}', '  web: {simulate: {}}'))
    const one = parsed(yaml('name: m', 'services:', '  api: {simulate: {}}'))
    expect(diffPolicies(one, two)).toMatchObject({added: [{name: 'web'}], removed: [], notApplied: []})
    expect(diffPolicies(two, one)).toMatchObject({added: [], removed: ['web'], notApplied: []})
  })

  test('ports, dependsOn and health checks still need a restart of the mesh, each said plainly', () => {
    expect(diffPolicies(commandFile('node a.js', 'x'), commandFile('node a.js', 'x', 8081)).notApplied).toEqual([
      'web: the port of v1 changed: restart the mesh (`mesh down && mesh up`) or use a deploy for that',
    ])
    const withDb = (dependsOn: string) =>
      parsed(yaml('name: m', 'services:', '  api:', `    dependsOn: [${dependsOn}]`, '    simulate: {}', '  db: {simulate: {}}', '  cache: {simulate: {}}'))
    expect(diffPolicies(withDb('db'), withDb('db, cache')).notApplied).toEqual(['api: dependsOn changed: restart the mesh (`mesh down && mesh up`) or use a deploy for that'])
    expect(diffPolicies(file(1), file(1, ['    health: {interval: 5s}'])).notApplied).toEqual([
      'api: health checks changed: restart the mesh (`mesh down && mesh up`) or use a deploy for that',
    ])
  })
})

describe('the ingress under apply', () => {
  const ingress = (port: number, ...routes: Array<[string, string]>) => ({port, routes: routes.map(([prefix, service]) => ({prefix, service}))})

  test('new routes apply live and are shown both ways; the same routes are no change', () => {
    expect(ingressChange(ingress(8000, ['/', 'web']), ingress(8000, ['/', 'web'], ['/api', 'api']))).toEqual({
      applied: true,
      message: 'ingress: routes / → web ⇒ / → web, /api → api',
    })
    expect(ingressChange(ingress(8000, ['/', 'web']), ingress(8000, ['/', 'web']))).toBeUndefined()
    expect(ingressChange(undefined, undefined)).toBeUndefined()
  })

  test('a new port, or an ingress added or removed, needs the mesh restarted', () => {
    expect(ingressChange(ingress(8000, ['/', 'web']), ingress(8080, ['/', 'web']))).toEqual({applied: false, message: 'ingress: port 8000 → 8080: restart the mesh (`mesh down && mesh up`) for that'})
    expect(ingressChange(undefined, ingress(8000, ['/', 'web']))?.message).toBe('ingress: added: restart the mesh (`mesh down && mesh up`) for that')
    expect(ingressChange(ingress(8000, ['/', 'web']), undefined)?.message).toBe('ingress: removed: restart the mesh (`mesh down && mesh up`) for that')
  })
})
