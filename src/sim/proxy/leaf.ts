// The bottom of a stack: one attempt to the instance already chosen (`ctx.endpoint`).
// Destinations take their leaf as a dependency, so a test (or a host of simulated
// instances) swaps in its own, as undici's Agent, Pool and MockAgent stand in for each
// other behind its Dispatcher. The data plane's speaks to real instances over the network.
import type {Agent} from 'undici'
import {type H2Sessions, h2Upstream} from './h2-upstream.js'
import type {Service} from './stack.js'
import {upstream} from './upstream.js'

/** What a destination's instances speak: `http` (HTTP/1.1) or `grpc` (h2c). */
export type LeafProtocol = 'http' | 'grpc'

export type Leaf = (protocol: LeafProtocol) => Service

/**
 * undici for HTTP/1.1 instances, node:http2 for `protocol: grpc` ones. `inflight`: requests
 * under way per instance (a drained instance is stopped only when it reaches 0).
 */
export function networkLeaf(agent: Agent, h2: H2Sessions, inflight: Map<string, number>): Leaf {
  return (protocol) => (protocol === 'grpc' ? h2Upstream(h2, inflight) : upstream(agent, inflight))
}
