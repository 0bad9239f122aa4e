// The shop template as `mesh sim` runs it: its frontend is a command: service, run on the model
// written beside its command in the template (catalog and cart at once, as server.js calls them).
import {readFileSync} from 'node:fs'
import path from 'node:path'
import {parseConfig} from '../../src/sim/config/load-config.js'
import type {MeshConfig} from '../../src/sim/config/types.js'

/** The template's mesh.yaml; `withoutFrontendModel`: its frontend a command: service with no model. */
export function shopConfig(withoutFrontendModel?: null): MeshConfig {
  const file = path.resolve('templates/shop/mesh.yaml')
  const {config, issues} = parseConfig(readFileSync(file, 'utf8'), file, {})
  if (!config) throw new Error(issues.map((i) => i.message).join('\n'))
  if (withoutFrontendModel === null) config.services.find((s) => s.name === 'frontend')!.model = undefined
  return config
}
