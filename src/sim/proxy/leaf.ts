// The bottom of a stack: one attempt to the instance already chosen (`ctx.endpoint`).
// Destinations take their leaf as a dependency, so a test (or a host of simulated
// instances) swaps in its own, as undici's Agent, Pool and MockAgent stand in for each
// other behind its Dispatcher. The data plane's speaks to real instances over the network,
// in plaintext or, where `policy.tls` asks, over TLS (upstream-tls.ts).
import type {Agent} from 'undici'
import {settleUnlessAborted} from '../abort-signal.js'
import type {TlsPolicy} from '../config/types.js'
import {type H2Sessions, h2Upstream} from './h2-upstream.js'
import {forward, type MeshRequest, type Service} from './stack.js'
import {abortReason, upstream} from './upstream.js'
import {leafOf, type UpstreamTls} from './upstream-tls.js'
import {tlsSetupFailure} from './respond.js'

/** What a destination's instances speak: `http` (HTTP/1.1) or `grpc` (h2c, or h2 over TLS). */
export type LeafProtocol = 'http' | 'grpc'

/** The `policy.tls` in force for a request's destination (read per request: `mesh apply` changes it). */
export type TlsOf = (req: MeshRequest) => TlsPolicy | undefined

export type Leaf = (protocol: LeafProtocol, tlsOf?: TlsOf) => Service

/**
 * undici for HTTP/1.1 instances, node:http2 for `protocol: grpc` ones. `inflight`: requests
 * under way per instance (a drained instance is stopped only when it reaches 0). `tls`: the
 * pools that originate TLS, for destinations whose policy asks for it.
 */
export function networkLeaf(agent: Agent, h2: H2Sessions, inflight: Map<string, number>, tls?: UpstreamTls): Leaf {
  return (protocol, tlsOf) => {
    const plaintext = protocol === 'grpc' ? h2Upstream(h2, inflight) : upstream(agent, inflight)
    if (!tls || !tlsOf) return plaintext
    return function originateTls(req, ctx, reply) {
      const policy = tlsOf(req)
      if (!policy || policy.mode === 'DISABLE') return plaintext(req, ctx, reply)
      const failed = (error: unknown) => tlsSetupFailure(req.destination, (error as Error).message, error)
      let pool
      try {
        pool = tls.pool(req, policy)
      } catch (error) {
        return reply.fail(failed(error))
      }
      if (!(pool instanceof Promise)) {
        ctx.upstreamTls = pool.security
        return leafOf(pool, protocol)(req, ctx, reply)
      }
      // The caller's first certificate is being issued: a caller that leaves meanwhile is told at once.
      const signal = ctx.signal
      settleUnlessAborted(signal, pool, {
        value: (ready) => {
          ctx.upstreamTls = ready.security
          forward(leafOf(ready, protocol), req, ctx, reply)
        },
        error: (error) => reply.fail(failed(error)),
        aborted: () => reply.fail(abortReason(signal)),
      })
    }
  }
}
