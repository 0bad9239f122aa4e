// Where a jwtRule's keys come from: a set known up front (inline `jwks`, the mesh's own dev
// issuer), or one fetched from `jwksUri` (a file, or an http URL) and kept.
//
// A fetched set follows istiod: fetched when the rule is loaded, refreshed every 20 minutes
// (on the first token after that; the cached keys answer meanwhile), and kept when a refresh
// fails — a JWKS server that goes away does not take authentication down with it. A token
// whose `kid` the set lacks makes it refetch at once (a key rotation), at most once a second
// so a stream of made-up kids cannot turn the mesh against the JWKS server.
import {createLocalJWKSet, type LocalJWKSet} from 'jose'
import type {Clock} from '../../time/clock.js'
import {checkJwks} from './jwks.js'

/** istiod's PILOT_JWT_PUB_KEY_REFRESH_INTERVAL. */
export const JWKS_REFRESH_MS = 20 * 60_000
/** The least time between two fetches a token (an unknown kid) or a failed fetch asks for. */
export const JWKS_REFETCH_MIN_MS = 1_000
/** A fetch that has not answered by then failed (istiod's jwksFetch timeout is 5 s). */
export const JWKS_FETCH_TIMEOUT_MS = 5_000

/** One fetched key set as `mesh status` shows it. */
export interface JwksStatus {
  /** The service whose jwtRule fetches it, or `ingress`. */
  owner: string
  issuer: string
  uri: string
  /** The key ids held now (empty when none was ever fetched). */
  kids: string[]
  fetches: number
  /** When the keys held now were fetched. */
  fetchedAt?: string
  /** The last fetch's failure, while fetches fail (cleared by a good one). */
  error?: string
  failingSince?: string
}

export interface KeySource {
  /** The keys now: a promise while the first fetch is under way; undefined when there are none (`error` says why). */
  current(): LocalJWKSet | Promise<LocalJWKSet | undefined> | undefined
  /**
   * A token named a key the set lacks: fetch again unless one was made less than
   * JWKS_REFETCH_MIN_MS ago. The new set, or undefined when no fetch was made or it failed.
   */
  refetch(): Promise<LocalJWKSet | undefined>
  /** Why the last fetch failed, while it does. */
  readonly error?: string
  status(): JwksStatus | undefined
}

/** Keys given in the config (or the dev issuer's): nothing to fetch. */
export function staticKeys(jwks: Parameters<typeof createLocalJWKSet>[0]): KeySource {
  const set = createLocalJWKSet(jwks)
  return {current: () => set, refetch: async () => undefined, status: () => undefined}
}

export interface FetchedKeysOptions {
  owner: string
  issuer: string
  uri: string
  clock: Clock
  /** Reads the JWKS text (a file, a URL); rejects with a message that says what failed. `signal` aborts it. */
  load(signal: AbortSignal): Promise<string>
  /** A `--jwks-unavailable` fault on the owner: its id, so a fetch fails naming it. */
  unavailable(): string | undefined
}

export class FetchedKeys implements KeySource {
  private set?: LocalJWKSet
  private kids: string[] = []
  private fetchedAt?: number
  private lastAttempt?: number
  private inFlight?: Promise<LocalJWKSet | undefined>
  private fetches = 0
  error?: string
  private failingSince?: number

  constructor(private readonly o: FetchedKeysOptions) {}

  /** The first fetch, when the rule is loaded: a failure shows in `mesh status` before any token comes. */
  start(): this {
    void this.fetch()
    return this
  }

  /** Fetches again now if the last fetch failed (once the mesh is up: a JWKS server in the mesh was not healthy before). */
  retryIfFailing(): void {
    if (this.error !== undefined && this.inFlight === undefined) void this.fetch()
  }

  current(): LocalJWKSet | Promise<LocalJWKSet | undefined> | undefined {
    const now = this.o.clock.now()
    if (this.set) {
      if (this.fetchedAt !== undefined && now - this.fetchedAt >= JWKS_REFRESH_MS && this.mayFetch(now)) void this.fetch()
      return this.set
    }
    if (this.inFlight) return this.inFlight
    return this.mayFetch(now) ? this.fetch() : undefined
  }

  async refetch(): Promise<LocalJWKSet | undefined> {
    if (this.inFlight) return this.inFlight
    if (!this.mayFetch(this.o.clock.now())) return undefined
    const before = this.fetches
    const set = await this.fetch()
    return this.fetches > before && this.error === undefined ? set : undefined
  }

  status(): JwksStatus {
    const {owner, issuer, uri, clock} = this.o
    const wall = (t: number | undefined) => (t === undefined ? undefined : new Date(clock.wallAt(t)).toISOString())
    return {
      owner,
      issuer,
      uri,
      kids: this.kids,
      fetches: this.fetches,
      ...(this.fetchedAt !== undefined ? {fetchedAt: wall(this.fetchedAt)} : {}),
      ...(this.error !== undefined ? {error: this.error, failingSince: wall(this.failingSince)} : {}),
    }
  }

  private mayFetch(now: number): boolean {
    return this.inFlight === undefined && (this.lastAttempt === undefined || now - this.lastAttempt >= JWKS_REFETCH_MIN_MS)
  }

  /** One fetch at a time: tokens that come while it is under way wait for it. */
  private fetch(): Promise<LocalJWKSet | undefined> {
    this.inFlight ??= this.load().finally(() => (this.inFlight = undefined))
    return this.inFlight
  }

  private async load(): Promise<LocalJWKSet | undefined> {
    const {clock} = this.o
    this.lastAttempt = clock.now()
    this.fetches++
    const abort = new AbortController()
    const timer = clock.setTimer(JWKS_FETCH_TIMEOUT_MS, () => abort.abort(new Error(`no answer within ${JWKS_FETCH_TIMEOUT_MS / 1000} s`)))
    try {
      const fault = this.o.unavailable()
      if (fault) throw new Error(`fault ${fault} (--jwks-unavailable) makes this fetch fail`)
      const checked = checkJwks(await this.o.load(abort.signal))
      if ('error' in checked) throw new Error(`the JWKS ${checked.error}`)
      this.set = createLocalJWKSet(checked.jwks)
      this.kids = checked.jwks.keys.map((k) => k.kid ?? '(no kid)')
      this.fetchedAt = clock.now()
      this.error = this.failingSince = undefined
      return this.set
    } catch (error) {
      const why = abort.signal.aborted ? (abort.signal.reason as Error).message : (error as Error).message
      this.error = `fetching ${this.o.uri} failed: ${why}`
      this.failingSince ??= clock.now()
      return this.set
    } finally {
      timer.cancel()
    }
  }
}
