// A token-bucket `rateLimit:` as Envoy's local rate limit, the one rate limit Istio's sidecars
// can enforce without a rate-limit service: an EnvoyFilter inserting
// envoy.filters.http.local_ratelimit into the service's inbound HTTP filters. What differs is
// always reported: meshsim holds one bucket for the whole service, refilled continuously; Envoy
// one per pod, refilled in steps. The other algorithms, and per-source or per-consumer buckets,
// need a global rate-limit service with descriptors: reported, nothing written.
import {EnvoyFilter} from '@kubernetes-models/istio/networking.istio.io/v1alpha3/EnvoyFilter'
import type {ServiceConfig} from '../config/types.js'
import {type ExportContext, istioDuration, type Manifest, meshLabels} from './manifest.js'

/** Envoy refuses a fill_interval under 50 ms. */
const MIN_FILL_INTERVAL_MS = 50

export function localRateLimit(s: ServiceConfig, ctx: ExportContext): Manifest | undefined {
  const rl = s.policy.rateLimit
  if (!rl) return undefined
  const where = `services.${s.name}.policy.rateLimit`
  if (rl.algorithm !== 'token-bucket' || rl.perSource || rl.key || rl.tiers) {
    const what = rl.algorithm !== 'token-bucket' ? `no ${rl.algorithm} algorithm` : 'no per-source or per-consumer buckets'
    ctx.losses.add(where, `Istio has no rate-limit field, and Envoy's local rate limit is one token bucket per pod, with ${what}`, "none written; a global rate limit service (envoyproxy/ratelimit) with descriptors for the consumer's key")
    return undefined
  }
  const pods = s.versions.reduce((n, v) => n + v.replicas, 0)
  const share = (n: number) => Math.max(1, Math.ceil(n / Math.max(1, pods)))
  const fillMs = Math.max(MIN_FILL_INTERVAL_MS, rl.periodMs)
  const bucket = {max_tokens: share(rl.burst), tokens_per_fill: share((rl.requests * fillMs) / rl.periodMs), fill_interval: istioDuration(fillMs)}
  const name = `${s.name}-local-rate-limit`
  ctx.losses.add(
    where,
    `meshsim holds one bucket for the whole service, refilled continuously; Envoy's local rate limit holds one per pod, refilled by whole fills${pods > 1 ? `, so each of the ${pods} pods gets 1/${pods} of the rate (exact only while load is spread evenly)` : ''}`,
    `the EnvoyFilter ${name}: token_bucket max_tokens ${bucket.max_tokens}, tokens_per_fill ${bucket.tokens_per_fill}, fill_interval ${bucket.fill_interval}${pods > 1 ? ' per pod' : ''}`,
  )
  const percent100 = {numerator: 100, denominator: 'HUNDRED'}
  return {
    file: s.name,
    object: new EnvoyFilter({
      metadata: {name, namespace: ctx.namespace, labels: {app: s.name, ...meshLabels(ctx)}},
      spec: {
        workloadSelector: {labels: {app: s.name}},
        configPatches: [
          {
            applyTo: 'HTTP_FILTER',
            match: {context: 'SIDECAR_INBOUND', listener: {filterChain: {filter: {name: 'envoy.filters.network.http_connection_manager'}}}},
            patch: {
              operation: 'INSERT_BEFORE',
              value: {
                name: 'envoy.filters.http.local_ratelimit',
                typed_config: {
                  '@type': 'type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit',
                  stat_prefix: 'http_local_rate_limiter',
                  token_bucket: bucket,
                  filter_enabled: {runtime_key: 'local_rate_limit_enabled', default_value: percent100},
                  filter_enforced: {runtime_key: 'local_rate_limit_enforced', default_value: percent100},
                  // meshsim's 429s carry the IETF draft's RateLimit headers.
                  enable_x_ratelimit_headers: 'DRAFT_VERSION_03',
                },
              },
            },
          },
        ],
      },
    }),
  }
}
