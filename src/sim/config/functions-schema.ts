// AWS Lambda's concurrency model over the scaled versions of a mesh:
//
//   functions: {accountConcurrency: 1000}        # the account's regional limit (Lambda's default)
//   services:
//     api:
//       command: node api.js
//       scaling: {minScale: 0, containerConcurrency: 1, reservedConcurrency: 50}
//
// `accountConcurrency` caps the requests in flight across every scaled version (one with
// `scaling:`); a version's `reservedConcurrency` is guaranteed to it and is also its cap,
// and it is taken out of the account's pool: the versions without one share what is left
// (Lambda's "unreserved" concurrency). The activator enforces both; this module checks them.
import {type At, type Checker, def, int, obj, type Path, type Report} from './checker.js'
import type {MeshConfig, ScalingConfig} from './types.js'

/** Lambda's default regional limit of concurrent executions. */
export const DEFAULT_ACCOUNT_CONCURRENCY = 1000
/** Far above any one machine (scaling's maxScale 1000 × containerConcurrency 1000): a typo beyond it. */
const MAX_CONCURRENCY = 1_000_000

export const functions: Checker<NonNullable<MeshConfig['functions']>> = obj({
  accountConcurrency: def(int({min: 1, max: MAX_CONCURRENCY, expected: `a whole number of requests in flight from 1 to ${MAX_CONCURRENCY}`}), DEFAULT_ACCOUNT_CONCURRENCY),
})

/** `scaling.reservedConcurrency`: 0 is allowed, as Lambda's (it throttles every request: a switch to turn a function off). */
export const reservedConcurrency: Checker<number> = int({min: 0, max: MAX_CONCURRENCY, expected: `a whole number of requests in flight from 0 to ${MAX_CONCURRENCY}`})

/**
 * What a `scaling:` with a reservedConcurrency probably did not mean, warned at the key:
 * 0 (which, unlike containerConcurrency's 0, admits nothing), a reservation one instance
 * could not even fill, one that maxScale can never use, and fewer than minScale keeps warm
 * (Lambda refuses provisioned concurrency above the reserved).
 */
export function reservedFits(s: ScalingConfig, at: At): void {
  const r = s.reservedConcurrency
  const key = at.child('reservedConcurrency')
  if (r === undefined || !key) return
  if (r === 0) {
    key.warn('reservedConcurrency 0 throttles every request (429), as Lambda\'s does to switch a function off; leave it out for no reservation')
    return
  }
  const perInstance = s.containerConcurrency
  if (perInstance > 0 && r < perInstance) {
    // Says all the others would (one instance, warm or not, is already more than the reservation).
    key.warn(`reservedConcurrency ${r} is below containerConcurrency ${perInstance}: not even one instance is ever given more than ${r} at once`)
    return
  }
  const most = perInstance > 0 ? s.maxScale * perInstance : undefined
  if (most !== undefined && r > most) {
    key.warn(`reservedConcurrency ${r} is more than maxScale ${s.maxScale} × containerConcurrency ${perInstance} = ${most} can run: ${r - most} are taken from the account's pool and never used`)
  }
  const warm = s.minScale * Math.max(1, perInstance)
  if (s.minScale > 0 && warm > r) {
    key.warn(`minScale ${s.minScale} keeps ${warm} ${warm === 1 ? 'request' : 'requests'} of capacity warm, above reservedConcurrency ${r}: the rest idles (Lambda refuses provisioned concurrency above the reserved)`)
  }
}

/** A scaled version, where its reservation was written (its own `scaling:` or the service's). */
interface Reservation {
  service: string
  version: string
  reserved?: number
  /** Path of the `scaling:` it has. */
  path: Path
}

/**
 * The account's limit against the reservations, across the file: a reservation above the
 * limit, and reservations that add up to more than it, are errors (Lambda refuses them);
 * reservations that leave nothing for the versions without one, and a limit with no scaled
 * version to limit, are warnings.
 */
export function checkFunctions({config}: {config: MeshConfig}, report: Report): void {
  const scaled: Reservation[] = []
  for (const s of config.services) {
    for (const v of s.versions) {
      if (!v.scaling) continue
      const own: Path = ['services', s.name, 'versions', v.name, 'scaling']
      // locate stops at the deepest part written: the version's own scaling:, or not.
      const path = report.locate(own).path.length === own.length ? own : ['services', s.name, 'scaling']
      scaled.push({service: s.name, version: v.name, reserved: v.scaling.reservedConcurrency, path})
    }
  }
  const limit = config.functions?.accountConcurrency
  if (limit === undefined) return
  const limitPath = report.root().child('functions')?.child('accountConcurrency') ? ['functions', 'accountConcurrency'] : ['functions']
  if (scaled.length === 0) {
    // A `scaling:` written but refused for an error of its own (its service left out of the config) is no "none".
    if (!scalingWritten(report)) report.at('warning', limitPath, 'functions.accountConcurrency limits the versions that have scaling:, and none has: it limits nothing', {atKey: limitPath.length === 1})
    return
  }
  const reserving = scaled.filter((r): r is Reservation & {reserved: number} => r.reserved !== undefined)
  let over = false
  // A service-level scaling: is one reservation for each of its versions, reported once at the line.
  const reported = new Set<string>()
  for (const r of reserving) {
    const where = [...r.path, 'reservedConcurrency']
    if (r.reserved <= limit || reported.has(where.join('.'))) continue
    reported.add(where.join('.'))
    report.at('error', where, `reservedConcurrency ${r.reserved} is above functions.accountConcurrency ${limit}: a reservation is taken from the account's pool; lower it or raise the limit`)
    over = true
  }
  if (over) return
  const sum = reserving.reduce((n, r) => n + r.reserved, 0)
  const names = (list: Reservation[]) => list.map((r) => (versionsOf(config, r.service) > 1 ? `${r.service} ${r.version}` : r.service))
  if (sum > limit) {
    const parts = reserving.map((r, i) => `${names(reserving)[i]} ${r.reserved}`)
    report.at('error', limitPath, `the reservedConcurrency of ${parts.join(', ')} adds up to ${sum}, above functions.accountConcurrency ${limit}; lower them or raise the limit`, {atKey: limitPath.length === 1})
    return
  }
  const unreserved = scaled.filter((r) => r.reserved === undefined)
  if (sum === limit && unreserved.length > 0) {
    report.at(
      'warning',
      limitPath,
      `reservations take all of functions.accountConcurrency ${limit}, leaving none for ${names(unreserved).join(', ')}: every request to ${unreserved.length === 1 ? 'it' : 'them'} is throttled (Lambda keeps 100 unreserved for this reason)`,
      {atKey: limitPath.length === 1},
    )
  }
}

function versionsOf(config: MeshConfig, service: string): number {
  return config.services.find((s) => s.name === service)?.versions.length ?? 0
}

/** Whether mesh.yaml writes a `scaling:` on any service or version, whatever became of it. */
function scalingWritten(report: Report): boolean {
  return (report.root().child('services')?.entries() ?? []).some(
    ({at}) => at.child('scaling') !== undefined || (at.child('versions')?.entries() ?? []).some((v) => v.at.child('scaling') !== undefined),
  )
}
