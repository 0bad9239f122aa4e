// Request authentication as the daemon holds it: every place's jwtRules, the mesh's dev
// issuer (`mesh token`, `issuer: mesh`), and `--jwks-unavailable` faults, composed once.
import type {JSONWebKeySet} from 'jose'
import type {MeshConfig} from '../../config/types.js'
import type {FaultSet} from '../../faults/fault-set.js'
import type {Registry} from '../../proxy/registry.js'
import type {Clock} from '../../time/clock.js'
import {DevIssuer} from './dev-issuer.js'
import type {JwksStatus} from './key-source.js'
import {RequestAuthenticators} from './request-authenticators.js'

export class MeshJwt {
  readonly authenticators: RequestAuthenticators
  private issuer?: DevIssuer

  constructor(o: {config: MeshConfig; clock: Clock; registry: Registry; faults: FaultSet}) {
    const {registry, faults} = o
    this.authenticators = new RequestAuthenticators({
      clock: o.clock,
      devJwks: () => this.issuer?.jwks,
      endpointsOf: (service) => (registry.has(service) ? registry.endpoints(service) : undefined),
      unavailable: (owner) => {
        const fault = faults.list().find((f) => f.kind === 'jwks-unavailable' && f.service === owner)
        if (fault) faults.update(fault.id, {seen: fault.seen + 1, hits: fault.hits + 1})
        return fault?.id
      },
    })
    this.authenticators.setIngress(o.config.ingress?.requestAuthentication)
  }

  /** Reads (or makes) the dev issuer's key in .mesh/: before the first request. */
  async start(meshDir: string): Promise<void> {
    this.issuer = await DevIssuer.loadOrCreate(meshDir)
  }

  /** The mesh is up: a jwksUri served by a service of the mesh can answer now. */
  started(): void {
    this.authenticators.retryFailed()
  }

  /** The dev issuer's public keys (GET /v1/jwks). */
  jwks(): JSONWebKeySet {
    return this.issuer?.jwks ?? {keys: []}
  }

  /** The jwksUri key sets for `mesh status`; undefined when no rule fetches one. */
  status(): JwksStatus[] | undefined {
    const all = this.authenticators.status()
    return all.length > 0 ? all : undefined
  }
}
