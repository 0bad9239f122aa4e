import {Args, Flags} from '@oclif/core'
import {DeployCommand, versionFlags} from '../cli/deploy-command.js'
import {parseDeployPlan} from '../sim/deploy/deploy-flags.js'
import {rolloutStrategy, withDeployDefaults} from '../sim/deploy/deploy-defaults.js'
import type {DeployRecord} from '../sim/deploy/deploy-types.js'

export default class Rollout extends DeployCommand {
  static override description =
    'Roll a service to another version: rolling (each new instance healthy before an old one is drained) or blue-green (all green healthy, optional smoke check, then one switch; blue kept for an instant rollback). The service\'s deploy: block in mesh.yaml gives the defaults; a flag given wins.'
  static override enableJsonFlag = true
  static override examples = [
    '<%= config.bin %> rollout catalog --to v2',
    "<%= config.bin %> rollout catalog --to v2 --strategy blue-green --smoke 'GET /healthz' --keep 2m",
    '<%= config.bin %> rollout payments --to v2 --set simulate.errorRate=0.2',
  ]
  static override args = {service: Args.string({description: 'service to deploy', required: true})}
  static override flags = {
    ...versionFlags,
    // No flag here has a default of its own: the service's deploy: block gives it first (deploy-defaults.ts).
    strategy: Flags.string({description: 'how to move traffic (default rolling, or deploy.strategy)', options: ['rolling', 'blue-green']}),
    'max-surge': Flags.integer({description: 'rolling: new instances started ahead of removals (default 1, or deploy.maxSurge)'}),
    'max-unavailable': Flags.integer({description: 'rolling: old instances removed before their replacements are healthy (default 0, or deploy.maxUnavailable)'}),
    smoke: Flags.string({description: "blue-green: request sent to every green instance alone before the switch, e.g. 'GET /healthz' (or deploy.smoke)"}),
    keep: Flags.string({description: 'blue-green: how long blue stays up after the switch (default 60s, or deploy.keep)'}),
  }

  async run(): Promise<DeployRecord> {
    const {args, flags} = await this.parse(Rollout)
    const declared = (await this.declaredDeploys(flags.file)).get(args.service)
    const strategy = rolloutStrategy(flags.strategy, declared)
    const plan = parseDeployPlan(args.service, strategy, withDeployDefaults({
      to: flags.to,
      maxSurge: flags['max-surge'],
      maxUnavailable: flags['max-unavailable'],
      smoke: flags.smoke,
      keep: flags.keep,
      command: flags.command,
      env: flags.env,
      set: flags.set,
      progressDeadline: flags['progress-deadline'],
      check: flags.check,
    }, declared, strategy))
    return this.deploy(flags.file, plan, flags.detach)
  }
}
