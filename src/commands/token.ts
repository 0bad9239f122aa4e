import {existsSync} from 'node:fs'
import path from 'node:path'
import {Flags} from '@oclif/core'
import {durationFlag, MeshCommand} from '../cli/mesh-command.js'
import {MeshError} from '../sim/errors.js'
import {DEFAULT_TOKEN_TTL_MS, DevIssuer, parseClaims} from '../sim/security/jwt/dev-issuer.js'
import {decodeJwt, type JSONWebKeySet, type JWTPayload} from 'jose'

export default class Token extends MeshCommand {
  static override description = `Print a JWT signed by the mesh's own development issuer (its key is in .mesh/, made on first use), for jwtRules with \`issuer: mesh\`.

Its iss is "mesh", so its request principal is mesh/<sub>. Works whether or not the mesh is up. --jwks prints the issuer's public key set instead (the control API serves it too: GET /v1/jwks).`
  static override enableJsonFlag = true
  static override examples = [
    'curl -H "Authorization: Bearer $(<%= config.bin %> token --sub alice --claim plan=gold)" http://localhost:8080/',
    '<%= config.bin %> token --sub bob --aud shop --claim groups=admin --claim groups=ops --ttl 10m',
    '<%= config.bin %> token --expired',
    '<%= config.bin %> token --jwks',
  ]
  static override flags = {
    sub: Flags.string({description: 'the subject (sub claim)', default: 'dev'}),
    claim: Flags.string({description: 'a claim NAME=VALUE (a JSON value, or text); a name given twice makes a list', multiple: true, default: []}),
    aud: Flags.string({description: 'an audience (aud claim); may be given more than once', multiple: true, default: []}),
    ttl: durationFlag({description: 'how long the token is valid', examples: '10m, 1h, 24h', atLeast: 'positive', default: '1h'}),
    expired: Flags.boolean({description: 'make it expired an hour ago (past the 60 s of clock skew a jwtRule allows)'}),
    jwks: Flags.boolean({description: 'print the issuer\'s public key set (JWKS) instead of a token'}),
  }

  async run(): Promise<{token: string; claims: JWTPayload} | JSONWebKeySet> {
    const {flags} = await this.parse(Token)
    // The key lives beside mesh.yaml (.mesh/): without one, there is no mesh to keep it for.
    if (!existsSync(path.resolve(flags.file))) {
      throw new MeshError('MESH_CONFIG_NOT_FOUND', `no mesh file at ${path.resolve(flags.file)}: the token key is kept in the .mesh/ beside it`, {
        hints: ['Run it where mesh.yaml is, or point at it with --file.'],
      })
    }
    const issuer = await DevIssuer.loadOrCreate(path.dirname(this.meshPaths(flags.file).root))
    if (flags.jwks) {
      if (!this.jsonEnabled()) this.log(JSON.stringify(issuer.jwks, null, 2))
      return issuer.jwks
    }
    const token = await issuer.sign({
      sub: flags.sub,
      claims: parseClaims(flags.claim),
      aud: flags.aud,
      ttlMs: flags.ttl ?? DEFAULT_TOKEN_TTL_MS,
      expired: flags.expired,
      now: Date.now(),
    })
    if (!this.jsonEnabled()) this.log(token)
    return {token, claims: decodeJwt(token)}
  }
}
