// The mesh as a development token issuer (`mesh token`): an ES256 key kept in
// .mesh/jwt-issuer.json (0600), made on first use, so every auth path can be tried without
// an identity provider. A jwtRule with `issuer: mesh` checks tokens against its public key.
// The key outlives `mesh down`: tokens made yesterday still verify today, as an IdP's do.
import {readFileSync, writeFileSync} from 'node:fs'
import path from 'node:path'
import {calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type JSONWebKeySet, type JWK, SignJWT} from 'jose'
import {MeshError} from '../../errors.js'
import {ensureMeshDir, meshPaths} from '../../control/state-file.js'

/** What `issuer:` says for this issuer, and the `iss` its tokens carry: their principals read `mesh/<sub>`. */
export const DEV_ISSUER = 'mesh'
const ALG = 'ES256'
export const DEV_ISSUER_FILE = 'jwt-issuer.json'
/** `mesh token` with no --ttl. */
export const DEFAULT_TOKEN_TTL_MS = 3_600_000

export interface TokenRequest {
  sub: string
  /** Repeated names make a list (`groups`); values as written, or JSON (numbers, booleans, lists). */
  claims?: Record<string, unknown>
  aud?: string[]
  ttlMs?: number
  /** Made already expired: exp an hour ago, beyond Envoy's 60 s of clock skew. */
  expired?: boolean
  /** Wall-clock ms. */
  now: number
}

interface KeyFile {
  kid: string
  privateJwk: JWK
}

export class DevIssuer {
  private constructor(
    private readonly kid: string,
    private readonly privateJwk: JWK,
    readonly file: string,
  ) {}

  /** The mesh in `meshDir`'s issuer: its key file read, or made (0600) when there is none. */
  static async loadOrCreate(meshDir: string): Promise<DevIssuer> {
    const paths = meshPaths(meshDir)
    const file = path.join(paths.root, DEV_ISSUER_FILE)
    const existing = readKeyFile(file)
    if (existing) return new DevIssuer(existing.kid, existing.privateJwk, file)
    ensureMeshDir(paths)
    const {privateKey} = await generateKeyPair(ALG, {extractable: true})
    const privateJwk = await exportJWK(privateKey)
    const kid = await calculateJwkThumbprint(privateJwk)
    try {
      // wx: when `mesh up` and `mesh token` make one at once, the first written is everyone's.
      writeFileSync(file, JSON.stringify({kid, privateJwk} satisfies KeyFile), {flag: 'wx', mode: 0o600})
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
      const won = readKeyFile(file)
      if (won) return new DevIssuer(won.kid, won.privateJwk, file)
    }
    return new DevIssuer(kid, privateJwk, file)
  }

  /** The public key set (`GET /v1/jwks`, `mesh token --jwks`, and what `issuer: mesh` verifies with). */
  get jwks(): JSONWebKeySet {
    const {d: _d, ...pub} = this.privateJwk
    return {keys: [{...pub, kid: this.kid, alg: ALG, use: 'sig'}]}
  }

  async sign(req: TokenRequest): Promise<string> {
    const now = Math.floor(req.now / 1000)
    const ttl = Math.round((req.ttlMs ?? DEFAULT_TOKEN_TTL_MS) / 1000)
    const issuedAt = req.expired ? now - 3600 - ttl : now
    const jwt = new SignJWT({...req.claims})
      .setProtectedHeader({alg: ALG, kid: this.kid, typ: 'JWT'})
      .setIssuer(DEV_ISSUER)
      .setSubject(req.sub)
      .setIssuedAt(issuedAt)
      .setExpirationTime(issuedAt + ttl)
    if (req.aud?.length) jwt.setAudience(req.aud.length === 1 ? req.aud[0] : req.aud)
    return jwt.sign(await importJWK(this.privateJwk, ALG))
  }
}

function readKeyFile(file: string): KeyFile | undefined {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw new MeshError('MESH_CONFIG_UNREADABLE', `cannot read the mesh's token key ${file}: ${(error as Error).message}`, {cause: error})
  }
  try {
    const parsed = JSON.parse(text) as KeyFile
    if (typeof parsed.kid === 'string' && parsed.privateJwk?.kty === 'EC' && typeof parsed.privateJwk.d === 'string') return parsed
  } catch {
    // reported below
  }
  throw new MeshError('MESH_CONFIG_UNREADABLE', `the mesh's token key ${file} is not a key this mesh wrote`, {
    hints: [`Remove it to have a new one made (tokens signed with the old key stop verifying): rm ${file}`],
  })
}

/**
 * `--claim plan=gold` flags as claims: a value that reads as JSON (`7`, `true`, `["a","b"]`)
 * is that, anything else a string; a name given twice makes a list (`groups`).
 */
export function parseClaims(flags: readonly string[]): Record<string, unknown> {
  const claims: Record<string, unknown> = {}
  for (const flag of flags) {
    const eq = flag.indexOf('=')
    const name = eq > 0 ? flag.slice(0, eq).trim() : ''
    if (!name) throw new MeshError('MESH_BAD_FLAG', `--claim "${flag}" is not NAME=VALUE.`, {hints: ['Examples: --claim plan=gold --claim groups=admin --claim groups=ops']})
    if (RESERVED_CLAIMS.includes(name)) throw new MeshError('MESH_BAD_FLAG', `--claim ${name} is set by its own flag or by the mesh (${RESERVED_CLAIMS.join(', ')}).`, {hints: ['Use --sub, --aud, --ttl or --expired.']})
    const text = flag.slice(eq + 1)
    let value: unknown = text
    try {
      value = JSON.parse(text)
    } catch {
      // a plain string
    }
    claims[name] = name in claims ? [...[claims[name]].flat(), value] : value
  }
  return claims
}

const RESERVED_CLAIMS = ['iss', 'sub', 'aud', 'exp', 'iat', 'nbf']
