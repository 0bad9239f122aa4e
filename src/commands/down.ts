import {MeshCommand} from '../cli/mesh-command.js'
import {type DownResult, stopMesh} from '../sim/control/lifecycle.js'

export default class Down extends MeshCommand {
  static override description =
    'Stop everything the mesh started: each instance\'s stopGracePeriod is its whole budget (requests under way drain, SIGTERM as soon as none is left, SIGKILL when it ends). Works even if the daemon died.'
  static override enableJsonFlag = true

  async run(): Promise<DownResult | {name: undefined; graceful: false; killed: []}> {
    const {flags} = await this.parse(Down)
    const result = await stopMesh(this.meshPaths(flags.file))
    if (!result) {
      this.log('No mesh is running here; nothing to stop.')
      return {name: undefined, graceful: false, killed: []}
    }
    if (result.graceful) this.log(`Stopped mesh "${result.name}".`)
    else this.log(`The daemon of mesh "${result.name}" was not running; cleaned up what it left.`)
    if (result.killed.length) this.log(`Killed leftover processes: ${result.killed.join(', ')}`)
    return result
  }
}
