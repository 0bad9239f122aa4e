// The shop template as `mesh sim` runs it: its frontend is a command: service, whose model is
// the simulate: written beside its command (catalog and cart at once, as its server.js does).
import {readFileSync} from 'node:fs'
import path from 'node:path'
import {parseConfig} from '../../src/sim/config/load-config.js'
import type {MeshConfig, SimulateConfig} from '../../src/sim/config/types.js'

/** `frontend`: a model in place of the template's; null: none (as a command: service without one). */
export function shopConfig(frontend?: SimulateConfig | null): MeshConfig {
  const file = path.resolve('templates/shop/mesh.yaml')
  const {config, issues} = parseConfig(readFileSync(file, 'utf8'), file, {})
  if (!config) throw new Error(issues.map((i) => i.message).join('\n'))
  const fe = config.services.find((s) => s.name === 'frontend')!
  if (frontend !== undefined) fe.model = frontend ?? undefined
  return config
}
