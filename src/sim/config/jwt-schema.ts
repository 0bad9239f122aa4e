// `requestAuthentication:` (a service's policy, or the ingress's) written with the checkers:
// Istio's RequestAuthentication jwtRules. Key sets are checked when the file is read — inline
// JWKS here, a jwksUri file once mesh.yaml's directory is known (checkJwksFiles) — so a set
// that is no JSON or has no usable key is a `mesh validate` error, not a 401 at run time.
import {readFileSync} from 'node:fs'
import {isAbsolute, resolve} from 'node:path'
import {array, type At, bool, checker, def, map, obj, oneOf, opt, refine, req, str, type Checker} from './checker.js'
import type {JwtRule, MeshConfig, RequestAuthenticationConfig} from './types.js'
import {checkJwks} from '../security/jwt/jwks.js'
import {DEV_ISSUER} from '../security/jwt/dev-issuer.js'

const headerName = str({pattern: /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, expected: 'a header name like x-user'})
const nonEmpty = str({nonEmpty: true})

/** Inline `jwks:` as JSON text (Istio's form) or as a YAML mapping: either way a key set with a usable key. */
const jwksText = (text: string, at: At) => {
  const checked = checkJwks(text)
  return 'error' in checked ? at.error(`the JWKS ${checked.error}`) : (checked.jwks as JwtRule['jwks'])
}
const jwks: Checker<NonNullable<JwtRule['jwks']>> = oneOf('a JWKS: JSON text, or a mapping with keys', {
  scalar: refine(str(), (text, at) => jwksText(text, at)),
  map: checker('a mapping with keys', (at) => jwksText(JSON.stringify((at.node as {toJSON(): unknown}).toJSON()), at), {type: 'object', properties: {keys: {type: 'array'}}, required: ['keys']}),
})

const HTTP_URL = /^https?:\/\//i
const jwksUri = refine(nonEmpty, (uri, at) => {
  if (!HTTP_URL.test(uri)) return uri
  try {
    return new URL(uri).hostname ? uri : at.expected('an http(s) URL or a file path')
  } catch {
    return at.expected('an http(s) URL with a host, or a file path')
  }
})

const jwtRule: Checker<JwtRule> = refine(
  obj({
    issuer: req(nonEmpty),
    audiences: opt(array(nonEmpty, {min: 1})),
    jwks: opt(jwks),
    jwksUri: opt(jwksUri),
    fromHeaders: opt(array(map(obj({name: req(headerName), prefix: opt(str())}), (h) => (h.prefix === undefined ? {name: h.name} : {name: h.name, prefix: h.prefix})), {min: 1})),
    fromParams: opt(array(nonEmpty, {min: 1})),
    forwardOriginalToken: def(bool(), false),
    outputPayloadToHeader: opt(headerName),
    outputClaimToHeaders: opt(array(obj({header: req(headerName), claim: req(nonEmpty)}), {min: 1})),
  }),
  (r, at) => {
    const given = (['jwks', 'jwksUri'] as const).filter((k) => r[k] !== undefined)
    if (given.length > 1) return at.child('jwksUri')!.errorAtKey('a jwtRule takes one key source: jwks or jwksUri, not both')
    if (r.issuer === DEV_ISSUER && given.length > 0) {
      return at.child(given[0])!.errorAtKey(`issuer: ${DEV_ISSUER} is the mesh's own issuer (\`mesh token\`): its key is the mesh's; leave out ${given[0]}`)
    }
    if (r.issuer !== DEV_ISSUER && given.length === 0) {
      return at.error(`missing jwks or jwksUri: where the keys of "${r.issuer}" are (the mesh does no OpenID discovery); or issuer: ${DEV_ISSUER} for the mesh's own tokens`)
    }
    const out: JwtRule = {issuer: r.issuer, forwardOriginalToken: r.forwardOriginalToken}
    for (const key of ['audiences', 'jwks', 'jwksUri', 'fromHeaders', 'fromParams', 'outputPayloadToHeader', 'outputClaimToHeaders'] as const) {
      if (r[key] !== undefined) (out as unknown as Record<string, unknown>)[key] = r[key]
    }
    return out
  },
)

export const requestAuthentication: Checker<RequestAuthenticationConfig> = refine(obj({jwtRules: req(array(jwtRule, {min: 1}))}), (ra, at) => {
  // As Istio: a token's iss picks its rule, so two rules for one issuer would be a coin toss.
  const seen = new Set<string>()
  for (const [i, rule] of ra.jwtRules.entries()) {
    if (seen.has(rule.issuer)) return at.child('jwtRules')!.child(i)!.child('issuer')!.error(`issuer "${rule.issuer}" has a jwtRule already: one rule per issuer`)
    seen.add(rule.issuer)
  }
  return {jwtRules: ra.jwtRules}
})

/** Whether `owner`'s jwtRules (a service's, or `ingress`) fetch a key set: what a `--jwks-unavailable` fault needs to act on. */
export function fetchesJwks(config: Pick<MeshConfig, 'ingress' | 'services'>, owner: string): boolean {
  const rules = owner === 'ingress' ? config.ingress?.requestAuthentication : config.services.find((s) => s.name === owner)?.policy.requestAuthentication
  return rules?.jwtRules.some((r) => r.jwksUri !== undefined) ?? false
}

/**
 * A jwksUri that is a file: made absolute (relative to mesh.yaml) and read now, so a missing,
 * unreadable or broken key file is an error at `mesh validate`, at the jwksUri it names.
 */
export function checkJwksFiles(config: MeshConfig, dir: string, locate: (path: Array<string | number>) => At): void {
  const places: Array<{path: Array<string | number>; config: RequestAuthenticationConfig | undefined}> = [
    {path: ['ingress', 'requestAuthentication'], config: config.ingress?.requestAuthentication},
    ...config.services.map((s) => ({path: ['services', s.name, 'policy', 'requestAuthentication'], config: s.policy.requestAuthentication})),
  ]
  for (const place of places) {
    place.config?.jwtRules.forEach((rule, i) => {
      if (rule.jwksUri === undefined || HTTP_URL.test(rule.jwksUri)) return
      const file = isAbsolute(rule.jwksUri) ? rule.jwksUri : resolve(dir, rule.jwksUri)
      const at = () => locate([...place.path, 'jwtRules', i, 'jwksUri'])
      let text: string
      try {
        text = readFileSync(file, 'utf8')
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code
        at().error(`cannot read the JWKS file ${file}: ${code === 'ENOENT' ? 'no such file' : (code ?? (error as Error).message)} (a path is relative to mesh.yaml; or give an http(s) URL)`)
        return
      }
      const checked = checkJwks(text)
      if ('error' in checked) at().error(`the JWKS in ${file} ${checked.error}`)
      rule.jwksUri = file
    })
  }
}
