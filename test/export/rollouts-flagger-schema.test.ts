// Flagger's objects are checked against rollouts-flagger-schema.ts (no package carries Flagger's CRD
// schema): a field of the wrong type, a missing required key, an unknown field or value is
// refused, naming its path, as the writer refuses any object its schema refuses.
import {describe, expect, test} from 'vitest'
import {type FlaggerCanarySpec, FlaggerCanary, FlaggerMetricTemplate} from '../../src/sim/export/rollouts-flagger-schema.js'
import {validateManifests} from '../../src/sim/export/manifest-writer.js'

const meta = {name: 'api', namespace: 'shop'}
const good: FlaggerCanarySpec = {
  provider: 'istio',
  targetRef: {apiVersion: 'apps/v1', kind: 'Deployment', name: 'api-v1'},
  service: {name: 'api', port: 80, targetPort: 'http'},
  analysis: {interval: '30s', threshold: 2, stepWeights: [10, 50], metrics: [{name: 'request-success-rate', interval: '1m', thresholdRange: {min: 99}}], webhooks: [{name: 'check', type: 'pre-rollout', url: 'http://flagger-loadtester.shop/', metadata: {type: 'bash', cmd: 'make e2e'}}]},
}
const problem = (spec: unknown) => {
  try {
    new FlaggerCanary(meta, spec as FlaggerCanarySpec).validate()
    return undefined
  } catch (error) {
    return (error as Error).message
  }
}

describe("mesh export's schema of Flagger's fields", () => {
  test('passes what the exporter writes', () => {
    expect(problem(good)).toBeUndefined()
    expect(() => new FlaggerMetricTemplate(meta, {provider: {type: 'prometheus', address: 'http://prometheus:9090'}, query: 'up'}).validate()).not.toThrow()
  })

  test('refuses a wrong type, a missing key, an unknown field, a value not allowed, each at its path', () => {
    expect(problem({...good, analysis: {...good.analysis, threshold: '2'}})).toContain('.spec.analysis.threshold: expected an integer')
    expect(problem({...good, service: {name: 'api'}})).toContain('.spec.service.port: required')
    expect(problem({...good, analysis: {...good.analysis, stepWeight: 10}})).toContain('.spec.analysis.stepWeight: not a field mesh export knows')
    expect(problem({...good, analysis: {...good.analysis, webhooks: [{name: 'x', type: 'pre-rollout-typo', url: 'http://x/'}]}})).toContain('.spec.analysis.webhooks[0].type: expected one of confirm-rollout')
    expect(problem({...good, analysis: {...good.analysis, interval: '30'}})).toContain('.spec.analysis.interval: "30" does not match')
    expect(problem({...good, analysis: {...good.analysis, stepWeights: [10, 150]}})).toContain('.spec.analysis.stepWeights[1]: 150 is out of range')
  })

  test('a refusal stops the export as a bug of the exporter', () => {
    expect(() => validateManifests([{file: 'api', object: new FlaggerCanary(meta, {...good, targetRef: {...good.targetRef, name: 'Not_A_Name'}})}])).toThrow(/mesh export made a Canary "api" that its schema refuses/)
  })
})
