// Progress while a mesh starts: one listr2 task per service, done when all its
// instances pass their health checks (a one-shot job: when it completed). The same
// view for foreground and `-d`.
import {Listr} from 'listr2'
import type {DaemonEvent} from '../sim/control/daemon.js'
import type {MeshConfig} from '../sim/config/types.js'
import {activeVersions} from '../sim/config/versions.js'
import {callGraph} from '../sim/config/call-graph.js'
import {instanceName} from '../sim/config/env-names.js'

export async function showStartup(
  config: MeshConfig,
  subscribe: (fn: (event: DaemonEvent) => void) => void,
  started: Promise<unknown>,
  /** `only`: the services that start (`mesh up SERVICE...`, profiles: with what they depend on); all when absent. */
  opts: {silent: boolean; only?: string[]},
): Promise<void> {
  const starting = opts.only?.length ? new Set(opts.only) : undefined
  const ready = new Map<string, (how: string) => void>()
  const waits = new Map(
    config.services.map((s) => [s.name, new Promise<string>((resolve) => ready.set(s.name, resolve))] as const),
  )
  subscribe((event) => {
    if (event.kind === 'service-healthy') ready.get(event.service)?.('healthy')
    if (event.kind === 'service-completed') ready.get(event.service)?.('completed')
  })
  const graph = callGraph(config)
  const list = new Listr(
    config.services.filter((s) => !starting || starting.has(s.name)).map((s) => {
      // Only versions with traffic start; the others wait for a deploy.
      const active = activeVersions(s)
      const count = s.versions.filter((v) => active.has(v.name)).reduce((n, v) => n + v.replicas, 0)
      // The daemon starts a service once these are healthy (startOrder): say why it waits.
      const after = (graph.get(s.name) ?? []).filter((d) => !starting || starting.has(d))
      return {
        title: `${s.name} (${count} instance${count === 1 ? '' : 's'}${after.length ? `, after ${after.join(', ')}` : ''})`,
        task: async (_: unknown, task: {title: string; skip(message: string): void}) => {
          try {
            const how = await Promise.race([waits.get(s.name), started.then(() => 'healthy')])
            task.title = `${s.name}: ${count} ${how}`
          } catch (error) {
            // Only the service whose instance failed is marked failed; the others were stopped with it.
            if (failedService(config, error) === s.name) throw error
            task.skip(`${s.name}: not started (mesh up stopped)`)
          }
        },
      }
    }),
    {concurrent: true, exitOnError: true, renderer: opts.silent ? 'silent' : 'default', fallbackRenderer: 'simple'},
  )
  // The daemon's own failure is the error worth showing; listr only mirrors it, and finishes
  // drawing first (every task settles with `started`), so the error comes below the list.
  started.catch(() => undefined) // handled below, once the list is drawn
  await list.run().catch(() => undefined)
  await started
}

/** The service of the instance a startup error names (`instance ratings-v1-0 crashed …`), if it names one. */
export function failedService(config: MeshConfig, error: unknown): string | undefined {
  const instance = /^instance (\S+) /.exec((error as Error | undefined)?.message ?? '')?.[1]
  if (!instance) return undefined
  for (const s of config.services) {
    for (const v of s.versions) {
      const prefix = instanceName(s.name, v.name, 0).slice(0, -1)
      if (instance.startsWith(prefix) && /^\d+$/.test(instance.slice(prefix.length))) return s.name
    }
  }
  return undefined
}
