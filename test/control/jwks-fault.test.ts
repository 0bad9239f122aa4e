// `--jwks-unavailable` is checked against the mesh like every fault: it names a service (or
// the ingress) whose jwtRules fetch a jwksUri, or it is refused with why — it would never act.
import {describe, expect, test} from 'vitest'
import {parseConfig} from '../../src/sim/config/load-config.js'
import {injectFault} from '../../src/sim/control/fault-inject.js'
import {FaultSet} from '../../src/sim/faults/fault-set.js'
import {parseFaultFlags} from '../../src/sim/faults/fault-flags.js'
import {VirtualClock} from '../../src/sim/time/clock.js'

const config = parseConfig(
  `name: shop
ingress:
  port: 0
  routes: [{prefix: /, service: orders}]
  requestAuthentication: {jwtRules: [{issuer: idp, jwksUri: 'http://auth/jwks'}]}
services:
  auth: {simulate: {}}
  orders:
    simulate: {}
    policy:
      requestAuthentication: {jwtRules: [{issuer: idp, jwksUri: 'http://auth/jwks'}, {issuer: mesh}]}
      authorization: {allow: [{requestPrincipals: ["*"]}]}
`,
  '/work/demo/mesh.yaml',
  {},
).config!
const known = {auth: ['v1'], orders: ['v1']}
const host = () => ({config, faults: new FaultSet(new VirtualClock()), instances: {running: () => [], signal: async () => undefined}})

describe('--jwks-unavailable', () => {
  test('on a service whose rules fetch a jwksUri, or on the ingress', () => {
    for (const target of ['orders', 'ingress']) {
      const spec = parseFaultFlags(target, {'jwks-unavailable': true, duration: '1m'}, known)
      expect(spec).toEqual({service: target, kind: 'jwks-unavailable', durationMs: 60_000})
      expect(injectFault(spec, host())).toMatchObject({service: target, kind: 'jwks-unavailable'})
    }
  })

  test('refused on a service that fetches no key set, and with a request selector', () => {
    expect(() => injectFault(parseFaultFlags('auth', {'jwks-unavailable': true}, known), host())).toThrow(/"auth" fetches no key set: none of its jwtRules has a jwksUri/)
    expect(() => parseFaultFlags('orders', {'jwks-unavailable': true, path: '/x'}, known)).toThrow(/--path does not apply to --jwks-unavailable/)
    expect(() => parseFaultFlags('nosuch', {'jwks-unavailable': true}, known)).toThrow(/service "nosuch" is not in the mesh/)
  })
})
