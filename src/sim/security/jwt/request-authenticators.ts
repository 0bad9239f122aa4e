// Every place's jwtRules compiled once: each service's (policy.requestAuthentication) and the
// ingress's. A rebuild with the same rules (a `mesh apply` that changed something else)
// keeps the authenticator and its fetched keys; new rules replace them.
import {readFile} from 'node:fs/promises'
import type {JSONWebKeySet} from 'jose'
import type {JwtRule, RequestAuthenticationConfig} from '../../config/types.js'
import type {Endpoint} from '../../proxy/registry.js'
import type {Clock} from '../../time/clock.js'
import {Authenticator, type CompiledRule} from './authenticator.js'
import {DEV_ISSUER} from './dev-issuer.js'
import {FetchedKeys, type JwksStatus, type KeySource, staticKeys} from './key-source.js'

export interface RequestAuthenticatorsDeps {
  clock: Clock
  /** The mesh's dev issuer's public keys (`issuer: mesh`), once loaded. */
  devJwks(): JSONWebKeySet | undefined
  /** A mesh service's instances (a jwksUri whose host is a service name is fetched from one), or undefined for a name that is no service. */
  endpointsOf(service: string): Endpoint[] | undefined
  /** The id of a `--jwks-unavailable` fault on `owner` (a service, or `ingress`), if one is active. */
  unavailable(owner: string): string | undefined
}

interface Compiled {
  /** The rules as configured: the same text keeps what was compiled. */
  key: string
  authenticator: Authenticator
  fetched: FetchedKeys[]
}

/** A JWKS body larger than this is no key set. */
const MAX_JWKS_BYTES = 1024 * 1024

export class RequestAuthenticators {
  private readonly services = new Map<string, Compiled>()
  private ingressRules?: Compiled
  private turn = 0

  constructor(private readonly deps: RequestAuthenticatorsDeps) {}

  /** A service's rules (at start and on every rebuild of its policy): its authenticator, or undefined without rules. */
  forService(service: string, config: RequestAuthenticationConfig | undefined): Authenticator | undefined {
    const compiled = this.compile(service, config, this.services.get(service))
    if (compiled) this.services.set(service, compiled)
    else this.services.delete(service)
    return compiled?.authenticator
  }

  /** The authenticator a service's rules made last (a call to an instance's published address reads it). */
  ofService(service: string): Authenticator | undefined {
    return this.services.get(service)?.authenticator
  }

  setIngress(config: RequestAuthenticationConfig | undefined): void {
    this.ingressRules = this.compile('ingress', config, this.ingressRules)
  }

  get ingress(): Authenticator | undefined {
    return this.ingressRules?.authenticator
  }

  /** Once every instance is up: key sets whose first fetch failed (their server was starting too) are fetched again. */
  retryFailed(): void {
    for (const c of [...(this.ingressRules ? [this.ingressRules] : []), ...this.services.values()]) for (const f of c.fetched) f.retryIfFailing()
  }

  /** Every fetched key set (`mesh status`): what it holds, and whether its fetches fail. */
  status(): JwksStatus[] {
    const all = [...(this.ingressRules ? [this.ingressRules] : []), ...this.services.values()]
    return all.flatMap((c) => c.fetched.map((f) => f.status()))
  }

  private compile(owner: string, config: RequestAuthenticationConfig | undefined, was: Compiled | undefined): Compiled | undefined {
    if (!config || config.jwtRules.length === 0) return undefined
    const key = JSON.stringify(config)
    if (was?.key === key) return was
    const fetched: FetchedKeys[] = []
    const rules = config.jwtRules.map((rule): CompiledRule => {
      const keys = this.keysOf(owner, rule)
      if (keys instanceof FetchedKeys) fetched.push(keys)
      return {rule, iss: rule.issuer, keys}
    })
    return {key, authenticator: new Authenticator(rules), fetched}
  }

  private keysOf(owner: string, rule: JwtRule): KeySource {
    if (rule.jwks) return staticKeys(rule.jwks as JSONWebKeySet)
    if (rule.jwksUri) {
      const uri = rule.jwksUri
      return new FetchedKeys({
        owner,
        issuer: rule.issuer,
        uri,
        clock: this.deps.clock,
        load: (signal) => (/^https?:\/\//i.test(uri) ? this.fetchUrl(uri, signal) : readFile(uri, {encoding: 'utf8', signal})),
        unavailable: () => this.deps.unavailable(owner),
      }).start()
    }
    if (rule.issuer === DEV_ISSUER) return this.devKeys()
    // The checker lets no such rule through; a set with no key refuses every token rather than crash.
    return staticKeys({keys: []})
  }

  /** The dev issuer's key, read when the first token needs it (the daemon loads the key at start). */
  private devKeys(): KeySource {
    let keys: KeySource | undefined
    return {
      current: () => {
        const jwks = this.deps.devJwks()
        keys ??= jwks && staticKeys(jwks)
        return keys?.current()
      },
      refetch: async () => undefined,
      error: 'the mesh\'s token key is not loaded',
      status: () => undefined,
    }
  }

  /** An http(s) jwksUri: a mesh service's name as host is one of its instances, anything else is fetched as is. */
  private async fetchUrl(uri: string, signal: AbortSignal): Promise<string> {
    const url = new URL(uri)
    const service = url.hostname.split('.')[0].toLowerCase()
    const endpoints = url.protocol === 'http:' ? this.deps.endpointsOf(service) : undefined
    let target = uri
    if (endpoints) {
      if (endpoints.length === 0) throw new Error(`service "${service}" has no healthy instance`)
      target = `${endpoints[this.turn++ % endpoints.length].origin}${url.pathname}${url.search}`
    }
    let response: Response
    try {
      response = await fetch(target, {signal, headers: {accept: 'application/json'}, redirect: 'follow'})
    } catch (error) {
      const cause = (error as {cause?: {code?: string; message?: string}}).cause
      throw new Error(cause?.code ?? cause?.message ?? (error as Error).message)
    }
    if (response.status !== 200) {
      await response.body?.cancel()
      throw new Error(`HTTP ${response.status}`)
    }
    const text = await response.text()
    if (text.length > MAX_JWKS_BYTES) throw new Error(`the answer is ${text.length} bytes, more than a key set's ${MAX_JWKS_BYTES}`)
    return text
  }
}
