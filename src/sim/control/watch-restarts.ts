// `mesh up --watch`: a service whose files under `watch:` change is restarted by a restart
// deploy, one instance at a time (each replacement healthy before the old one is drained,
// so code that no longer starts leaves the old instances serving). Changes during a
// restart, or during another deploy of it, make one more after it.
import path from 'node:path'
import type {MeshConfig} from '../config/types.js'
import type {DeployController} from '../deploy/deploy-controller.js'
import {parseRestartPlan} from '../deploy/deploy-flags.js'
import {FileWatcher} from './file-watcher.js'

export interface WatchRestartsOptions {
  config: MeshConfig
  deploys: DeployController
  /** Stopped (or never started) services are not restarted: `mesh up` starts them on the files as they are then. */
  isStarted(service: string): boolean
  /** False once the mesh is stopping: no more restarts. */
  isRunning(): boolean
  onFilesChanged(service: string, files: string[]): void
}

export class WatchRestarts {
  private readonly watchers: FileWatcher[] = []
  /** Per service: files changed since its last watch restart began. */
  private readonly changedFiles = new Map<string, Set<string>>()

  constructor(private readonly o: WatchRestartsOptions) {}

  /** One watcher per service with `watch:` paths. */
  start(): this {
    for (const service of this.o.config.services) {
      if (!service.watch) continue
      this.watchers.push(new FileWatcher({paths: service.watch, onChange: (files) => void this.filesChanged(service.name, files)}).start())
    }
    return this
  }

  close(): void {
    for (const w of this.watchers.splice(0)) w.close()
  }

  private async filesChanged(service: string, files: string[]): Promise<void> {
    if (!this.o.isStarted(service)) return
    const pending = this.changedFiles.get(service)
    if (pending) return void files.forEach((f) => pending.add(f))
    const changed = new Set(files)
    this.changedFiles.set(service, changed)
    try {
      while (changed.size > 0 && this.o.isRunning()) {
        await this.o.deploys.whenIdle(service)
        const now = [...changed].map((f) => path.relative(this.o.config.dir, f) || f)
        changed.clear()
        this.o.onFilesChanged(service, now)
        try {
          this.o.deploys.start(parseRestartPlan(service, {}))
        } catch (error) {
          console.error(`[daemon] ${service}: watch restart refused: ${(error as Error).message}`)
        }
      }
    } finally {
      this.changedFiles.delete(service)
    }
  }
}
