// The Istio objects istio.ts and ingress.ts wrote, changed for a controller that routes a
// service's versions itself: every HTTP route to the service's host sent where the controller
// wants it (Argo's stable and canary subsets, or the host alone), its DestinationRule's subsets
// replaced. Routes are found by the host they send to, so the ingress's routes to the
// service change with the service's own.
import type {DestinationRule} from '@kubernetes-models/istio/networking.istio.io/v1/DestinationRule'
import type {VirtualService} from '@kubernetes-models/istio/networking.istio.io/v1/VirtualService'
import type {ServiceConfig} from '../config/types.js'
import type {HttpRoute} from './istio.js'
import {type ExportContext, type Manifest, serviceHost} from './manifest.js'

type RouteDestination = NonNullable<HttpRoute['route']>[number]

/** The VirtualServices with a route to `s`, and those routes' names: what Argo's trafficRouting names. */
export interface ReroutedService {
  name: string
  routes: string[]
}

/**
 * Each HTTP route whose destinations are all `s`'s host gets `to(port)` as its destinations,
 * and loses a mirror to that host (its subsets are gone). Returns where it did so.
 */
export function rerouteIstio(manifests: readonly Manifest[], s: ServiceConfig, ctx: ExportContext, to: (port: number | undefined) => RouteDestination[]): ReroutedService[] {
  const host = serviceHost(s.name, ctx.namespace)
  const out: ReroutedService[] = []
  for (const m of manifests) {
    if (m.object.kind !== 'VirtualService') continue
    const vs = m.object as VirtualService
    const names: string[] = []
    for (const route of vs.spec?.http ?? []) {
      if (route.mirror?.host === host) {
        delete route.mirror
        delete route.mirrorPercentage
      }
      const dests = route.route ?? []
      if (dests.length === 0 || !dests.every((d) => d.destination.host === host)) continue
      route.route = to(dests[0].destination.port?.number)
      if (route.name) names.push(route.name)
    }
    if (names.length > 0) out.push({name: vs.metadata!.name!, routes: names})
  }
  return out
}

/** The service's own DestinationRule (istio.ts names it after the service), if written. */
export function destinationRuleOf(manifests: readonly Manifest[], s: ServiceConfig): DestinationRule | undefined {
  return manifests.find((m) => m.object.kind === 'DestinationRule' && m.object.metadata?.name === s.name && m.file === s.name)?.object as DestinationRule | undefined
}

/** The service's own VirtualService, if written. */
export function virtualServiceOf(manifests: readonly Manifest[], s: ServiceConfig): VirtualService | undefined {
  return manifests.find((m) => m.object.kind === 'VirtualService' && m.object.metadata?.name === s.name && m.file === s.name)?.object as VirtualService | undefined
}
