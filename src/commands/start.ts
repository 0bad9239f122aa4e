import {Args} from '@oclif/core'
import {MeshCommand} from '../cli/mesh-command.js'
import {withProgress} from '../cli/task-progress.js'
import type {MeshStatus} from '../sim/control/status.js'
import {STOPPED_BY_MESH_STOP} from '../sim/proxy/respond.js'
import {serviceNotFound} from '../sim/errors.js'
import {renderStatus} from './status.js'

export default class Start extends MeshCommand {
  static override description =
    'Start services again on the running mesh, as docker compose start: with no SERVICE, every service `mesh stop` stopped; named, those (and what they depend on), whatever left them not started. Each is healthy (or completed) before what depends on it starts.'
  static override enableJsonFlag = true
  static override strict = false
  static override examples = ['<%= config.bin %> start', '<%= config.bin %> start worker', '<%= config.bin %> stop worker && <%= config.bin %> start worker']
  static override args = {service: Args.string({description: 'service(s) to start (default: every stopped one)'})}

  async run(): Promise<MeshStatus> {
    const {argv, flags} = await this.parse(Start)
    const named = argv as string[]
    const client = this.connect(flags.file)
    const status = await client.status()
    const known = status.services.map((s) => s.name)
    for (const name of named) if (!known.includes(name)) throw serviceNotFound(name, known)
    const names = named.length ? named : status.services.filter((s) => s.notStarted === STOPPED_BY_MESH_STOP).map((s) => s.name)
    if (names.length === 0) {
      if (!this.jsonEnabled()) this.log('Nothing to start: no service is stopped.')
      return status
    }
    const started = await withProgress(`Starting ${names.join(', ')}`, () => client.start(names), !this.jsonEnabled() && process.stdout.isTTY === true)
    if (!this.jsonEnabled()) this.log(renderStatus(started))
    return started
  }
}
