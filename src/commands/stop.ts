import {Args} from '@oclif/core'
import {MeshCommand} from '../cli/mesh-command.js'
import {withProgress} from '../cli/task-progress.js'
import type {MeshStatus} from '../sim/control/status.js'
import {renderStatus} from './status.js'

export default class Stop extends MeshCommand {
  static override description =
    "Stop services without taking the mesh down, as docker compose stop: each instance drained (requests under way finish within its stopGracePeriod) and its process stopped, callers before what they call. The services stay declared — calls to them get 503 UH saying they are stopped, `mesh apply` and `mesh restart` leave them so — until `mesh start` (every stopped service), `mesh start SERVICE` or `mesh up` starts them again. What depends on them keeps running. With no SERVICE, every service; the daemon, ingress and telemetry stay up."
  static override enableJsonFlag = true
  static override strict = false
  static override examples = ['<%= config.bin %> stop worker', '<%= config.bin %> stop catalog cart', '<%= config.bin %> stop', '<%= config.bin %> start']
  static override args = {service: Args.string({description: 'service(s) to stop (default: all)'})}

  async run(): Promise<MeshStatus> {
    const {argv, flags} = await this.parse(Stop)
    const names = argv as string[]
    const client = this.connect(flags.file)
    const title = `Stopping ${names.length ? names.join(', ') : 'every service'}`
    const status = await withProgress(title, () => client.stop(names), !this.jsonEnabled() && process.stdout.isTTY === true)
    if (!this.jsonEnabled()) this.log(renderStatus(status))
    return status
  }
}
