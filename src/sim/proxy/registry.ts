// The control plane's table of instances. An instance joins when its health check
// passes and leaves on stop, crash or failing checks. Sidecars watch it as a stream
// of reset / add / remove updates (linkerd2-proxy's resolve), never polling per request.
import {EventEmitter} from 'node:events'

export interface Endpoint {
  instance: string
  service: string
  version: string
  /** Where the instance itself listens. */
  host: string
  port: number
  /** The instance's inbound sidecar: the address the registry publishes. */
  inboundPort: number
  /** `http://host:port` of the instance, precomputed for the request path. */
  origin: string
}

export type RegistryUpdate =
  | {kind: 'reset'; endpoints: Endpoint[]}
  | {kind: 'add'; endpoint: Endpoint}
  | {kind: 'remove'; instance: string}

export class Registry {
  private readonly byService = new Map<string, Map<string, Endpoint>>()
  private readonly events = new EventEmitter()

  constructor(services: Iterable<string>) {
    for (const s of services) this.byService.set(s, new Map())
    this.events.setMaxListeners(0)
  }

  /** A service `mesh apply` added: its instances may join from now on. */
  addService(service: string): void {
    if (!this.byService.has(service)) this.byService.set(service, new Map())
  }

  /** A service `mesh apply` removed, once its instances have left. */
  removeService(service: string): void {
    this.byService.delete(service)
  }

  has(service: string): boolean {
    return this.byService.has(service)
  }

  services(): string[] {
    return [...this.byService.keys()]
  }

  endpoints(service: string): Endpoint[] {
    return [...(this.byService.get(service)?.values() ?? [])]
  }

  isRegistered(instance: string, service: string): boolean {
    return this.byService.get(service)?.has(instance) ?? false
  }

  add(endpoint: Endpoint): void {
    const table = this.byService.get(endpoint.service)
    if (!table) throw new Error(`registry: unknown service ${endpoint.service}`)
    table.set(endpoint.instance, endpoint)
    this.events.emit(endpoint.service, {kind: 'add', endpoint} satisfies RegistryUpdate)
  }

  remove(service: string, instance: string): void {
    if (this.byService.get(service)?.delete(instance)) {
      this.events.emit(service, {kind: 'remove', instance} satisfies RegistryUpdate)
    }
  }

  /** Calls `fn` at once with a reset, then with every change. Returns the unsubscribe function. */
  watch(service: string, fn: (update: RegistryUpdate) => void): () => void {
    fn({kind: 'reset', endpoints: this.endpoints(service)})
    this.events.on(service, fn)
    return () => this.events.off(service, fn)
  }
}
