// The shop template as `mesh sim` runs it: its frontend is a command: service, so it is given
// the model its server.js behaves like (calls catalog, then cart; a few ms of its own).
import {readFileSync} from 'node:fs'
import path from 'node:path'
import {parseConfig} from '../../src/sim/config/load-config.js'
import type {MeshConfig, SimulateConfig} from '../../src/sim/config/types.js'

export const FRONTEND_MODEL: SimulateConfig = {
  latency: {p50Ms: 2, p99Ms: 10},
  errorRate: 0,
  errorStatus: 500,
  calls: [
    {service: 'catalog', probability: 1, path: '/items', method: 'GET'},
    {service: 'cart', probability: 1, path: '/cart', method: 'GET'},
  ],
  callMode: 'sequential',
  responseBytes: 512,
  concurrency: 0,
  seed: 0,
}

export function shopConfig(frontend: SimulateConfig | null = FRONTEND_MODEL): MeshConfig {
  const file = path.resolve('templates/shop/mesh.yaml')
  const {config, issues} = parseConfig(readFileSync(file, 'utf8'), file, {})
  if (!config) throw new Error(issues.map((i) => i.message).join('\n'))
  const fe = config.services.find((s) => s.name === 'frontend')!
  // null: the frontend as a command: service with no model (the template's own taken away).
  fe.model = frontend ?? undefined
  return config
}
