import {Args} from '@oclif/core'
import {MeshCommand} from '../cli/mesh-command.js'
import {describeStep, outcomeLine} from '../cli/deploy-progress.js'
import type {DeployRecord} from '../sim/deploy/deploy-types.js'

export default class Rollback extends MeshCommand {
  static override description =
    'Undo a deploy: during one, traffic goes back to the old version at once and the new instances are drained; after one, the service rolls back to the version it replaced.'
  static override enableJsonFlag = true
  static override args = {service: Args.string({description: 'service to roll back', required: true})}

  async run(): Promise<DeployRecord> {
    const {args, flags} = await this.parse(Rollback)
    const record = await this.connect(flags.file).rollback(args.service)
    if (!this.jsonEnabled()) {
      for (const s of record.steps.filter((x) => x.kind === 'rollback' || x.kind === 'done' || x.kind === 'failed')) this.log(describeStep(s))
      this.log(outcomeLine(record))
    }
    return record
  }
}
