// `promtool check metrics` as a judge of the /metrics exposition: a parse error fails; a
// lint finding fails unless it is one we keep on purpose. promtool exits 1 on a parse
// error and 3 on lint findings alone (2.42, Debian's), printing both on stderr.
import {spawnSync} from 'node:child_process'

/**
 * Findings kept on purpose: Istio's own metric is in milliseconds, and dashboards written
 * for Istio query that name; renaming it to seconds would break them. The cold starts'
 * histogram has the same unit and buckets, so a panel can lay the two side by side.
 */
export const ACCEPTED_FINDINGS = [
  'istio_request_duration_milliseconds use base unit "seconds" instead of "milliseconds"',
  'mesh_cold_start_duration_milliseconds use base unit "seconds" instead of "milliseconds"',
]

/** Whether promtool runs here (CI installs it: .ci/run). */
export const promtoolAvailable = spawnSync('promtool', ['--version']).error === undefined

export interface PromtoolVerdict {
  /** What promtool could not parse, or an exit code it has no other meaning for. */
  error?: string
  /** Lint findings, one per line, the accepted ones left out. */
  findings: string[]
}

export function promtoolCheck(exposition: string): PromtoolVerdict {
  const r = spawnSync('promtool', ['check', 'metrics'], {input: exposition, encoding: 'utf8'})
  if (r.error) throw r.error
  const lines = `${r.stdout}${r.stderr}`.split('\n').map((l) => l.trim()).filter(Boolean)
  if (r.status === 0) return {findings: []}
  if (r.status !== 3) return {error: `promtool exited ${r.status}: ${lines.join('\n')}`, findings: []}
  return {findings: lines.filter((l) => !ACCEPTED_FINDINGS.includes(l))}
}
