// Istio's surprise, said where it can be seen: a jwtRule refuses a bad token but lets a request
// with no token through. Only an authorization rule that needs a valid token (a
// `requestPrincipals` to allow, a `notRequestPrincipals` to deny, a `when` on
// `request.auth.*`) refuses it. A service with jwtRules and no such rule is warned about, as is
// an ingress whose routes lead to one. Pure: config in, warnings out.
import type {AuthorizationConfig, AuthorizationRule, MeshConfig} from './types.js'
import type {ResilienceWarning} from './resilience-lint.js'

export function lintJwt(config: MeshConfig): ResilienceWarning[] {
  const warnings: ResilienceWarning[] = []
  const needsToken = new Map(config.services.map((s) => [s.name, requiresToken(s.policy.authorization)]))
  for (const s of config.services) {
    if (!s.policy.requestAuthentication || needsToken.get(s.name)) continue
    warnings.push({
      service: s.name,
      path: `services.${s.name}.policy.requestAuthentication`,
      message:
        `jwtRules refuse a bad token but let a request with no token through (Istio's behaviour); "${s.name}" has no authorization rule that needs one, ` +
        `so anyone may call it without a token. Add policy.authorization.allow: [{requestPrincipals: ["*"]}] to require a valid token.`,
    })
  }
  const open = [...new Set((config.ingress?.routes ?? []).map((r) => r.service))].filter((s) => needsToken.get(s) === false)
  if (config.ingress?.requestAuthentication && open.length > 0) {
    warnings.push({
      service: 'ingress',
      path: 'ingress.requestAuthentication',
      message:
        `the ingress's jwtRules refuse a bad token but let a request with no token through (Istio's behaviour); ${open.map((s) => `"${s}"`).join(', ')} ` +
        `${open.length === 1 ? 'has' : 'have'} no authorization rule that needs one. Add policy.authorization.allow: [{requestPrincipals: ["*"]}] where a token is required.`,
    })
  }
  return warnings
}

/** Whether some rule refuses a request that carries no valid token. */
function requiresToken(authz: AuthorizationConfig | undefined): boolean {
  const tokenIn = (rule: AuthorizationRule) => rule.when?.some((w) => w.key.startsWith('request.auth.')) === true
  const allow = authz?.allow ?? []
  const deny = authz?.deny ?? []
  return allow.some((r) => (r.requestPrincipals?.length ?? 0) > 0 || tokenIn(r)) || deny.some((r) => (r.notRequestPrincipals?.length ?? 0) > 0)
}
