// Istio's RequestAuthentication, before authorization (Envoy puts jwt_authn before RBAC):
// a token that is present must be valid, or the request is answered 401 with
// `www-authenticate` and the reason; a request with no token goes on as `auth.outcome: none`
// — authentication alone refuses no one, only an authorization rule requiring a principal
// does. A call through the ingress meets the ingress's rules first, then the service's.
//
// A request without a token pays a header lookup and goes on in the same tick; a token is
// checked asynchronously (jose, WebCrypto), and a caller that leaves meanwhile is answered at once.
import {type Authentication, type Authenticator, forwardVerified} from '../../security/jwt/authenticator.js'
import {settleUnlessAborted} from '../../abort-signal.js'
import {firstHeader} from '../headers.js'
import {ProxyError} from '../respond.js'
import {abortReason} from '../upstream.js'
import {forward, type Layer, type MeshRequest, type RequestAuth} from '../stack.js'

const NO_TOKEN: RequestAuth = Object.freeze({outcome: 'none'})

/** `authenticatorOf`: the destination's rules (undefined: none); `ingress`: the ingress's, for calls that came in through it. */
export const requestAuthentication =
  (authenticatorOf: (req: MeshRequest) => Authenticator | undefined, ingress: () => Authenticator | undefined): Layer =>
  (inner) =>
    function requestAuthentication(req, ctx, reply) {
      const atIngress = req.peer.identity === 'ingress' ? ingress() : undefined
      const own = authenticatorOf(req)
      if (!atIngress && !own) return forward(inner, req, ctx, reply)
      const steps = atIngress && own ? [atIngress, own] : [(atIngress ?? own)!]
      for (let i = 0; i < steps.length; i++) {
        const authenticator = steps[i]
        const found = tokenFor(authenticator, req)
        if (!found) continue
        // This try's signal, as it was when the request reached us (see CallContext.signal).
        const signal = ctx.signal
        const rest = steps.slice(i + 1)
        // A caller that leaves while a key set is fetched (up to its timeout) is answered at once.
        settleUnlessAborted(signal, verifyAll(found, authenticator, rest, req, ctx.clock.wallNow()), {
          value: (refusal) => (refusal ? reply.fail(refusal) : forward(inner, req, ctx, reply)),
          error: (error) => reply.fail(error),
          aborted: () => reply.fail(abortReason(signal)),
        })
        return
      }
      forward(inner, req, ctx, reply)
    }

type Found = NonNullable<ReturnType<Authenticator['find']>>

/** The token `authenticator`'s rules find; with none, the request is `outcome: none` (unless an earlier step verified one). */
function tokenFor(authenticator: Authenticator, req: MeshRequest): Found | undefined {
  // What the rules write, no one else may: a header of that name from outside goes.
  for (const name of authenticator.outputHeaders) delete req.headers[name]
  const found = authenticator.find(req.headers, req.path)
  if (!found) req.auth ??= NO_TOKEN
  return found
}

/** The first authenticator's token, then the others' (the service's, after the ingress's): the 401 of the first that refuses. */
async function verifyAll(found: Found, first: Authenticator, rest: Authenticator[], req: MeshRequest, nowMs: number): Promise<ProxyError | undefined> {
  const refusal = settle(await first.verify(found, nowMs), req)
  if (refusal) return refusal
  for (const authenticator of rest) {
    const next = tokenFor(authenticator, req)
    const refused = next && settle(await authenticator.verify(next, nowMs), req)
    if (refused) return refused
  }
  return undefined
}

/** A valid token is forwarded as Envoy does (token removed, claims to headers) and becomes `req.auth`; an invalid one, the 401. */
function settle(verdict: Authentication, req: MeshRequest): ProxyError | undefined {
  if (verdict.outcome === 'invalid') return unauthenticated(req, verdict.reason)
  if (verdict.outcome === 'none') return undefined
  req.path = forwardVerified(verdict, req.headers, req.path)
  req.auth = {outcome: 'valid', principal: verdict.principal, claims: verdict.claims, rule: verdict.rule.rule.issuer}
  return undefined
}

/**
 * Envoy's jwt_authn answer: 401 with `www-authenticate: Bearer realm="<url>", error="invalid_token"`
 * (RFC 6750). `JWT` is meshsim's flag: Envoy gives the refusal none and says
 * `jwt_authn_access_denied{<reason>}` in its response code details.
 */
function unauthenticated(req: MeshRequest, reason: string): ProxyError {
  const host = firstHeader(req.headers, 'host') ?? req.destination
  // The URL the client asked for: its scheme as the ingress recorded it (https behind ingress.tls).
  const scheme = firstHeader(req.headers, 'x-forwarded-proto') === 'https' ? 'https' : 'http'
  const realm = `${scheme}://${host}${req.path.split('?')[0]}`
  // A quoted-string: the reason's own quotes become single ones, anything not printable ASCII goes.
  const quoted = (s: string) => s.replace(/["\\]/g, "'").replace(/[^\x20-\x7e]/g, '?')
  return new ProxyError(401, 'JWT', `Jwt authentication failed for "${req.destination}": ${reason} (requestAuthentication)`, {
    headers: {'www-authenticate': `Bearer realm="${quoted(realm)}", error="invalid_token", error_description="${quoted(reason)}"`},
  })
}
