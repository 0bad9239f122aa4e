// What an export could not carry over. A mesh.yaml field with no equivalent in the target is
// never dropped in silence: it is listed here, with why and what was written instead, and
// `--strict` turns any entry into an error.

export interface Loss {
  /** Where it was written, as mesh.yaml's dotted path (services.payments.policy.retries.budget). */
  path: string
  /** Why the target cannot say it. */
  reason: string
  /** What the export wrote instead, or what to do by hand; `none` when nothing comes near. */
  nearest: string
}

export class LossReport {
  private readonly losses: Loss[] = []

  /** Once per path and reason: a service-level setting met once per version is one loss. */
  add(path: string, reason: string, nearest: string): void {
    if (this.losses.some((l) => l.path === path && l.reason === reason)) return
    this.losses.push({path, reason, nearest})
  }

  /** In the order found (the file's order, object by object): the same input, the same list. */
  list(): Loss[] {
    return [...this.losses]
  }
}

/** The report a person reads on stderr: one entry per loss, path first. */
export function formatLosses(losses: readonly Loss[], target: string): string {
  if (losses.length === 0) return ''
  const head = `${losses.length} mesh.yaml setting${losses.length === 1 ? ' has' : 's have'} no exact equivalent in ${target}:`
  return [head, ...losses.map((l) => `  ${l.path}: ${l.reason}\n    instead: ${l.nearest}`)].join('\n')
}
