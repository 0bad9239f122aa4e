// `mesh canary --load`: the deploy brings its own traffic, open-loop through the ingress
// until the deploy ends, so its analysis has requests to judge even on an idle mesh.
import type {MeshConfig} from '../config/types.js'
import {ingressPathTo} from '../config/call-graph.js'
import {MeshError} from '../errors.js'
import {caCertPath} from '../security/ca-file.js'
import {runLoad} from './load-generator.js'

/** What a running deploy holds of its load: `stop` when it ends; `message` for its step log. */
export interface DeployLoad {
  stop(): void
  message: string
}

/**
 * `rps` requests a second through the ingress, on the route to the service, or else on one
 * to a service that calls it (the shop's recommendations sits behind frontend and catalog).
 * Refused, saying what to add, when no route reaches it. With ingress.tls.redirect it goes to
 * the HTTPS port (the HTTP one answers 308), trusting the mesh CA kept in `caDir`.
 */
export function canaryLoad(config: MeshConfig, ingress: {url: string; httpsUrl?: string} | undefined, caDir: string, service: string, rps: number): DeployLoad {
  const reach = ingressPathTo(config, service)
  if (!reach || !ingress) {
    throw new MeshError('MESH_BAD_FLAG', `--load needs an ingress route to "${service}" or to a service that calls it, and mesh.yaml has none.`, {
      hints: ['Add one under ingress.routes, or drive traffic yourself with `mesh load`.'],
    })
  }
  const abort = new AbortController()
  const path = reach.route.prefix
  // A deploy ends it; a day is only the bound should nothing ever stop it.
  const https = config.ingress?.tls?.redirect && ingress.httpsUrl ? {target: ingress.httpsUrl, caFile: caCertPath(caDir)} : {target: ingress.url}
  void runLoad({...https, path, rps, durationMs: 24 * 3_600_000, signal: abort.signal}).catch(() => undefined)
  return {
    stop: () => abort.abort(),
    message: `${rps} requests/s through the ingress at ${path} (${['ingress', ...reach.services].join(' → ')})`,
  }
}
