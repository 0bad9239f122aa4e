import {Args} from '@oclif/core'
import chalk from 'chalk'
import {MeshCommand} from '../cli/mesh-command.js'
import {renderTable} from '../cli/table.js'
import {type DeployOutcome, type DeployRecord, succeeded} from '../sim/deploy/deploy-types.js'

export default class History extends MeshCommand {
  static override description = "List a service's deploys: strategy, versions, outcome, and the last analysis."
  static override enableJsonFlag = true
  static override args = {service: Args.string({description: 'only this service'})}

  async run(): Promise<DeployRecord[]> {
    const {args, flags} = await this.parse(History)
    const records = await this.connect(flags.file).history(args.service)
    if (!this.jsonEnabled()) {
      if (records.length === 0) this.log(`No deploys${args.service ? ` of ${args.service}` : ''} yet.`)
      else {
        const colour = (o: DeployOutcome) => (succeeded(o) ? chalk.green(o) : o === 'running' ? chalk.yellow(o) : chalk.red(o))
        this.log(
          renderTable(
            ['ID', 'SERVICE', 'STRATEGY', 'FROM', 'TO', 'OUTCOME', 'STARTED', 'LAST STEP'],
            records.map((r) => [
              r.id,
              r.plan.service,
              r.plan.strategy,
              r.from.join(','),
              r.plan.to,
              colour(r.outcome),
              r.startedAt.slice(11, 19),
              r.steps.at(-1)?.message ?? '',
            ]),
          ),
        )
      }
    }
    return records
  }
}
