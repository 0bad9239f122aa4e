// The Prometheus queries a controller judges a canary by, as meshsim's analysis does: the
// share of requests answered without a 5xx, and the p99 latency, over a window. Istio's
// standard metrics (istio_requests_total, istio_request_duration_milliseconds) and Linkerd's
// proxy metrics (response_total, response_latency_ms), as each mesh's Prometheus names them.
import type {MeshTarget} from './manifest.js'

/** Where each mesh's documented install puts its Prometheus. */
export const PROMETHEUS: Record<Exclude<MeshTarget, 'none'>, string> = {
  istio: 'http://prometheus.istio-system:9090',
  linkerd: 'http://prometheus.linkerd-viz.svc:9090',
}

/** A rate needs two scrapes in its window: Prometheus scrapes every 15 s, so no window is under a minute. */
export const MIN_WINDOW_MS = 60_000

export interface Queries {
  /** 0..1 */
  successRatio: string
  /** milliseconds */
  p99: string
}

/** Istio's metrics of every request `service` (in `namespace`) received, as its sidecars report them. */
export function istioQueries(service: string, namespace: string, window: string): Queries {
  const sel = `reporter="destination",destination_service_name="${service}",destination_service_namespace="${namespace}"`
  return {
    successRatio: `sum(rate(istio_requests_total{${sel},response_code!~"5.."}[${window}])) / sum(rate(istio_requests_total{${sel}}[${window}]))`,
    p99: `histogram_quantile(0.99, sum(rate(istio_request_duration_milliseconds_bucket{${sel}}[${window}])) by (le))`,
  }
}

/** Linkerd's inbound metrics of the pods whose names match `pods` (a Prometheus regex, anchored). */
export function linkerdQueries(pods: string, namespace: string, window: string): Queries {
  const sel = `namespace="${namespace}",pod=~"${pods}",direction="inbound"`
  return {
    successRatio: `sum(rate(response_total{${sel},classification!="failure"}[${window}])) / sum(rate(response_total{${sel}}[${window}]))`,
    p99: `histogram_quantile(0.99, sum(rate(response_latency_ms_bucket{${sel}}[${window}])) by (le))`,
  }
}
