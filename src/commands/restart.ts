import {Args} from '@oclif/core'
import {DeployCommand, versionFlags} from '../cli/deploy-command.js'
import {fileFlag} from '../cli/mesh-command.js'
import {parseRestartPlan} from '../sim/deploy/deploy-flags.js'
import type {DeployRecord} from '../sim/deploy/deploy-types.js'

export default class Restart extends DeployCommand {
  static override description =
    "Restart a service's instances one at a time with no dropped request: each new process healthy before the old one is drained (as kubectl rollout restart). For code changes; changes to mesh.yaml go through `mesh apply` or a deploy."
  static override enableJsonFlag = true
  static override examples = ['<%= config.bin %> restart frontend', '<%= config.bin %> restart catalog -d']
  static override args = {service: Args.string({description: 'service to restart', required: true})}
  static override flags = {
    file: fileFlag(),
    'progress-deadline': versionFlags['progress-deadline'],
    detach: versionFlags.detach,
  }

  async run(): Promise<DeployRecord> {
    const {args, flags} = await this.parse(Restart)
    return this.deploy(flags.file, parseRestartPlan(args.service, {progressDeadline: flags['progress-deadline']}), flags.detach)
  }
}
