import {Args, Flags} from '@oclif/core'
import chalk from 'chalk'
import {MeshCommand} from '../cli/mesh-command.js'
import {renderTable} from '../cli/table.js'
import type {Stamped} from '../sim/control/event-log.js'
import type {ScalingRecord} from '../sim/control/scaling-history.js'
import {type DeployOutcome, type DeployRecord, succeeded} from '../sim/deploy/deploy-types.js'

export default class History extends MeshCommand {
  static override description = "List a service's deploys (strategy, versions, outcome, the last analysis) and its scaling: the autoscaler's decisions and failed starts."
  static override enableJsonFlag = true
  static override args = {service: Args.string({description: 'only this service'})}
  static override flags = {
    scaling: Flags.boolean({description: 'only the scaling events (with --json: those instead of the deploy records)'}),
  }

  async run(): Promise<DeployRecord[] | Array<Stamped<ScalingRecord>>> {
    const {args, flags} = await this.parse(History)
    const client = this.connect(flags.file)
    // The deploys first, always: the daemon says there when the service is not in the mesh.
    const deploys = await client.history(args.service)
    const records = flags.scaling ? undefined : deploys
    const scaling = !flags.scaling && this.jsonEnabled() ? [] : await client.scalingHistory(args.service)
    // --json stays the deploy records, as before scaling events existed; --scaling asks for those.
    if (this.jsonEnabled()) return records ?? scaling
    const of = args.service ? ` of ${args.service}` : ''
    if (records) {
      if (records.length === 0) this.log(`No deploys${of} yet.`)
      else this.log(renderDeploys(records))
    }
    // A service that is not autoscaled has none: nothing is said of them.
    if (scaling.length) this.log(`${records ? '\n' : ''}${renderScaling(scaling)}`)
    else if (flags.scaling) this.log(`No scaling events${of} yet.`)
    return records ?? scaling
  }
}

function renderDeploys(records: DeployRecord[]): string {
  const colour = (o: DeployOutcome) => (succeeded(o) ? chalk.green(o) : o === 'running' ? chalk.yellow(o) : chalk.red(o))
  return renderTable(
    ['ID', 'SERVICE', 'STRATEGY', 'FROM', 'TO', 'OUTCOME', 'STARTED', 'LAST STEP'],
    records.map((r) => [r.id, r.plan.service, r.plan.strategy, r.from.join(','), r.plan.to, colour(r.outcome), r.startedAt.slice(11, 19), r.steps.at(-1)?.message ?? '']),
  )
}

/** One line per decision, oldest first: "12:00:03  catalog  v1  1 → 5  panic  observed 41 concurrent …". */
export function renderScaling(records: Array<Stamped<ScalingRecord>>): string {
  return renderTable(
    ['TIME', 'SERVICE', 'VERSION', 'SCALED', 'PANIC', 'REASON'],
    records.map(({at, event: e}) =>
      e.kind === 'scaled'
        ? [at.slice(11, 19), e.service, e.version, `${e.from} → ${e.to}`, e.panic ? chalk.yellow('panic') : '-', e.coldStartMs === undefined ? e.reason : `${e.reason} (cold start ${e.coldStartMs} ms)`]
        : [at.slice(11, 19), e.service, e.version, chalk.red('failed'), '-', e.reason],
    ),
  )
}
