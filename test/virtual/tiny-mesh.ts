// The tiny mesh the sweep and output tests run: an ingress, frontend calling payments once per
// request, payments failing one call in five, no retries. Tests vary it (`--vary`, or a
// `.replace` of one line); some name its line numbers (`mesh.yaml:14:19` is frontend's attempts).
import {parseConfig} from '../../src/sim/config/load-config.js'
import type {MeshConfig} from '../../src/sim/config/types.js'

/** Where the tests say it is (messages only: nothing reads it). */
export const TINY_FILE = '/tmp/tiny-mesh/mesh.yaml'

export const TINY_SOURCE = `name: tiny
ingress:
  port: 8000
  routes:
    - {prefix: /, service: frontend}
services:
  frontend:
    simulate:
      latency: {p50: 4ms, p99: 20ms}
      calls:
        - {service: payments, probability: 1, path: /pay, method: POST}
    policy:
      retries:
        attempts: 0
  payments:
    versions:
      v1:
        simulate:
          latency: {p50: 2ms, p99: 10ms}
          errorRate: 0.2
`

/** TINY_SOURCE parsed, or TINY_SOURCE with `edit` applied to its text. */
export function tinyConfig(edit: (source: string) => string = (s) => s): MeshConfig {
  const {config, issues} = parseConfig(edit(TINY_SOURCE), TINY_FILE, {})
  if (!config) throw new Error(issues.map((i) => `${i.path}: ${i.message}`).join('\n'))
  return config
}
