// Picks the instance for one attempt among the chosen version's registered
// endpoints, skipping those outlier detection ejected — unless so few are left that
// Envoy's panic mode balances over all of them — and avoiding instances this request
// already tried. For a scaled version, only among those with a free slot (ctx.slot).
import type {Endpoint} from '../registry.js'
import type {Balancer} from '../balance/balancer.js'
import {availableEndpoints} from '../balance/panic.js'
import type {EndpointSet} from '../endpoint-set.js'
import {firstHeader} from '../headers.js'
import type {OutlierDetector} from '../outlier/outlier-detector.js'
import {noHealthyUpstream} from '../respond.js'
import type {Layer, MeshRequest} from '../stack.js'

export interface BalanceDeps {
  service: string
  endpoints: EndpointSet
  balancer: () => Balancer<Endpoint>
  outlier: () => OutlierDetector | undefined
  /** ring-hash: where the key comes from. */
  hashOn: () => {header: string} | {cookie: string} | undefined
}

export const balance =
  (deps: BalanceDeps): Layer =>
  (inner) =>
    function balance(req, ctx, reply) {
      const version = ctx.version!
      const all = deps.endpoints.ofVersion(version)
      const slot = ctx.slot
      // Only where the activator set it: a property added to every context would change its shape per request.
      if (slot) ctx.slot = undefined
      if (all.length === 0) return reply.fail(noHealthyUpstream(deps.service, 0))
      // A scaled version's attempt (the activator admitted it): only instances with a place free.
      const pool = slot ? slot.free(all) : all
      const outlier = deps.outlier()
      // Nothing ejected (the usual case): every endpoint is a candidate, and no list or closure is made.
      let candidates: readonly Endpoint[] = pool
      let panic = false
      const ejecting = outlier !== undefined && outlier.ejectedCountNow() > 0
      if (ejecting) ({candidates, panic} = availableEndpoints(pool, (e) => !outlier.isEjected(e.instance)))
      const endpoint = deps.balancer().pick(candidates, {hashKey: hashKey(req, deps.hashOn()), exclude: ctx.tried})
      if (!endpoint) return reply.fail(noHealthyUpstream(deps.service, all.length))
      slot?.claim(endpoint)
      const d = ctx.decision
      // With nothing ejected the candidates are the version's own list: reuse its names, allocate nothing.
      d.candidates = (candidates === all ? deps.endpoints.namesOf(version) : candidates.map((e) => e.instance)) as string[]
      d.chosen = endpoint.instance
      if (panic) d.panic = true
      if (ejecting && candidates.length < pool.length) d.ejected = all.filter((e) => outlier.isEjected(e.instance)).map((e) => e.instance)
      ctx.endpoint = endpoint
      inner(req, ctx, reply)
    }

function hashKey(req: MeshRequest, on: {header: string} | {cookie: string} | undefined): string | undefined {
  if (!on) return undefined
  if ('header' in on) return firstHeader(req.headers, on.header.toLowerCase())
  const cookies = firstHeader(req.headers, 'cookie')
  if (!cookies) return undefined
  for (const part of cookies.split(';')) {
    const eq = part.indexOf('=')
    if (eq > 0 && part.slice(0, eq).trim() === on.cookie) return part.slice(eq + 1).trim()
  }
  return undefined
}
