// The mesh's ingress in a cluster: with Istio, a Gateway on the istio-ingressgateway and a
// VirtualService bound to it; without a mesh, a Kubernetes Ingress for whatever controller the
// cluster runs. meshsim picks the longest matching prefix; both targets take their routes in
// order, so the routes are written longest prefix first.
import {Gateway} from '@kubernetes-models/istio/networking.istio.io/v1/Gateway'
import {VirtualService} from '@kubernetes-models/istio/networking.istio.io/v1/VirtualService'
import {Ingress} from 'kubernetes-models/networking.k8s.io/v1/Ingress'
import type {IngressConfig, IngressRoute} from '../config/types.js'
import {type HttpRoute, ingressRoutesTo} from './istio.js'
import {type ExportContext, type Manifest, meshLabels, serviceHost} from './manifest.js'
import {servicePort} from './workloads.js'

function byLongestPrefix(routes: readonly IngressRoute[]): IngressRoute[] {
  return routes.map((r, i) => ({r, i})).sort((a, b) => b.r.prefix.length - a.r.prefix.length || a.i - b.i).map(({r}) => r)
}

const escapeRe2 = (text: string) => text.replace(/[\\^$.|?*+()[\]{}]/g, '\\$&')

export function ingressObjects(ctx: ExportContext): Manifest[] {
  const ingress = ctx.config.ingress
  if (!ingress || ingress.routes.length === 0) return []
  ingressLosses(ingress, ctx)
  return ctx.target === 'istio' ? istioIngress(ingress, ctx) : kubernetesIngress(ingress, ctx)
}

function istioIngress(ingress: IngressConfig, ctx: ExportContext): Manifest[] {
  const name = `${ctx.config.name}-ingress`
  const metadata = {name, namespace: ctx.namespace, labels: meshLabels(ctx)}
  const tls = ingress.tls
  if (tls) {
    ctx.losses.add(
      'ingress.tls',
      `the certificate ${tls.certFile ? `(${tls.certFile})` : '(the mesh CA issues one for localhost)'} is a file on this machine; the Gateway reads a Secret`,
      `an HTTPS server on port 443 with credentialName ${name}-tls: create it in istio-system (kubectl create secret tls ${name}-tls -n istio-system --cert=... --key=...)`,
    )
  }
  const gateway = new Gateway({
    metadata,
    spec: {
      selector: {istio: 'ingressgateway'},
      servers: [
        {port: {number: 80, name: 'http', protocol: 'HTTP'}, hosts: ['*'], ...(tls?.redirect ? {tls: {httpsRedirect: true}} : {})},
        ...(tls ? [{port: {number: 443, name: 'https', protocol: 'HTTPS'}, hosts: ['*'], tls: {mode: 'SIMPLE' as const, credentialName: `${name}-tls`}}] : []),
      ],
    },
  })
  const http = byLongestPrefix(ingress.routes).flatMap((r, i): HttpRoute[] => {
    const target = ctx.config.services.find((s) => s.name === r.service)!
    const route: HttpRoute = {
      name: `route-${i}`,
      match: [{uri: {prefix: r.prefix}}],
      route: [{destination: {host: serviceHost(r.service, ctx.namespace), port: {number: servicePort(target)}}}],
    }
    if (r.rewrite !== undefined) {
      // meshsim's rewrite leaves no double slash (/api/items, prefix /api, rewrite / → /items); Istio's uri
      // rewrite would (//items), so a rewrite ending in / takes the prefix and the slash after it by regex.
      route.rewrite = r.rewrite.endsWith('/') && !r.prefix.endsWith('/') ? {uriRegexRewrite: {match: `^${escapeRe2(r.prefix)}/?`, rewrite: r.rewrite}} : {uri: r.rewrite}
    }
    return ingressRoutesTo(target, route, ctx)
  })
  const vs = new VirtualService({metadata, spec: {hosts: ['*'], gateways: [name], http}})
  return [
    {file: 'ingress', object: gateway},
    {file: 'ingress', object: vs},
  ]
}

function kubernetesIngress(ingress: IngressConfig, ctx: ExportContext): Manifest[] {
  if (ingress.tls) ctx.losses.add('ingress.tls', "mesh export --mesh none does not write the Ingress's tls (its certificate is a file on this machine)", 'plain HTTP; add spec.tls with a Secret holding the certificate')
  const paths = byLongestPrefix(ingress.routes).map((r) => {
    if (r.rewrite !== undefined) {
      ctx.losses.add(`ingress.routes.${ingress.routes.indexOf(r)}.rewrite`, 'a Kubernetes Ingress has no rewrite', `none; the controller's own annotation (ingress-nginx: nginx.ingress.kubernetes.io/rewrite-target), or --mesh istio`)
    }
    if (!r.prefix.endsWith('/')) {
      ctx.losses.add(`ingress.routes.${ingress.routes.indexOf(r)}.prefix`, `an Ingress's Prefix path matches whole path segments: ${r.prefix} takes ${r.prefix}/x but not ${r.prefix}x, which meshsim's prefix does`, 'pathType: Prefix')
    }
    const target = ctx.config.services.find((s) => s.name === r.service)!
    return {path: r.prefix, pathType: 'Prefix' as const, backend: {service: {name: r.service, port: {number: servicePort(target)}}}}
  })
  return [{file: 'ingress', object: new Ingress({metadata: {name: `${ctx.config.name}-ingress`, namespace: ctx.namespace, labels: meshLabels(ctx)}, spec: {rules: [{http: {paths}}]}})}]
}

function ingressLosses(ingress: IngressConfig, ctx: ExportContext): void {
  if (ingress.preserveRequestId) ctx.losses.add('ingress.preserveRequestId', "a mesh-wide proxy setting in a cluster, not a Gateway's", "none; Istio's meshConfig (or an EnvoyFilter on the gateway) sets preserve_external_request_id")
  if (ingress.maxRequestHeaders !== undefined) ctx.losses.add('ingress.maxRequestHeaders', "a mesh-wide proxy setting in a cluster, not a Gateway's", "none; Envoy's default is 100 headers")
  // With Istio, istio-security.ts writes it for the ingress gateway.
  if (ingress.requestAuthentication && ctx.target !== 'istio') ctx.losses.add('ingress.requestAuthentication', 'a Kubernetes Ingress checks no tokens', 'none; export with --mesh istio (a RequestAuthentication on the ingress gateway)')
}
