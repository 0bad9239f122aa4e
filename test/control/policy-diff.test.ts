// `mesh apply` after a deploy: mesh.yaml's weights replace the split the deploy left,
// so the move is reported (it is a change, though the file's weights did not change)
// and warned about, with what to write in mesh.yaml to keep the deployed version.
import {describe, expect, test} from 'vitest'
import {deployBehindWeights, diffPolicies, formatWeights, liveWeightsChange, sameWeights} from '../../src/sim/control/policy-diff.js'
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
    expect(deployBehindWeights([deploy('d1', 'promoted'), deploy('d2', 'promoted', 'v2', 'restart')], new Set())?.id).toBe('d1')
    expect(deployBehindWeights([deploy('d1', 'promoted'), deploy('d2', 'running', 'v2', 'restart')], new Set())?.id).toBe('d1')
    expect(deployBehindWeights([deploy('d1', 'promoted', 'v2', 'restart')], new Set())).toBeUndefined()
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

describe('what apply cannot do live', () => {
  const file = (replicas: number) =>
    parsed(yaml('name: m', 'services:', '  api:', `    replicas: ${replicas}`, '    versions:', '      v1: {simulate: {}}'))

  test('a version a deploy added to the running config is not a mesh.yaml edit; a replicas edit is', () => {
    const declared = file(1)
    const live = structuredClone(declared)
    live.services[0].versions.push({...live.services[0].versions[0], name: 'v2'})
    expect(diffPolicies(live, file(1), declared.services).notApplied).toEqual([])
    // Compared with the running config instead, the deploy's version looked like an edit.
    expect(diffPolicies(live, file(1)).notApplied).toHaveLength(1)
    expect(diffPolicies(live, file(2), declared.services).notApplied).toEqual([
      'api: versions, replicas, commands or ports changed: restart the mesh (or use a deploy) for that',
    ])
  })
})
