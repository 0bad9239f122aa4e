// Refuses a call its destination's authorization policy does not allow, before any other
// work (rate limit tokens, retries): 403 RBAC, PERMISSION_DENIED to a gRPC caller. It
// judges `req.peer`, the identity set where the call came in, not how it was learnt, and
// `req.auth`, what request authentication made of the token. The rule that decided goes
// into the routing decision, for `mesh trace --why`.
import type {AuthorizationConfig} from '../../config/types.js'
import {authorize} from '../policy/authorization.js'
import {accessDenied} from '../respond.js'
import type {Layer, MeshRequest} from '../stack.js'

/** `policyOf`: the destination's policy (the inbound listener's shared stack looks it up per request). */
export const authorization =
  (policyOf: (req: MeshRequest) => AuthorizationConfig | undefined): Layer =>
  (inner) =>
    function authorization(req, ctx, reply) {
      const policy = policyOf(req)
      if (policy) {
        const verdict = authorize(policy, req)
        if (!verdict.allowed) {
          ctx.decision.authorization = `denied: ${verdict.reason}`
          return reply.fail(accessDenied(req.destination, req.peer.identity, verdict.reason))
        }
        ctx.decision.authorization = verdict.rule ? `allowed by ${verdict.rule}` : 'allowed: no deny rule matches and there are no allow rules'
      }
      inner(req, ctx, reply)
    }
