import chalk from 'chalk'
import {MeshCommand, fileFlag} from '../cli/mesh-command.js'
import {loadConfig} from '../sim/config/load-config.js'
import path from 'node:path'

export default class Apply extends MeshCommand {
  static override description =
    'Re-read mesh.yaml and apply policy and traffic-weight changes to the running mesh, without restarting services or dropping requests.'
  static override enableJsonFlag = true
  static override flags = {file: fileFlag()}

  async run(): Promise<{changes: string[]; notApplied: string[]}> {
    const {flags} = await this.parse(Apply)
    // Check the file here first, so errors carry line:column and nothing reaches the daemon.
    await loadConfig(path.resolve(flags.file))
    const result = await this.connect(flags.file).apply()
    if (!this.jsonEnabled()) {
      if (result.changes.length === 0) this.log('No policy or weight changes.')
      for (const c of result.changes) this.log(`${chalk.green('applied')} ${c}`)
      for (const n of result.notApplied) this.log(`${chalk.yellow('not applied')} ${n}`)
    }
    return result
  }
}
