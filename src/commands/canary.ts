import {Args, Flags} from '@oclif/core'
import {DeployCommand, versionFlags} from '../cli/deploy-command.js'
import {parseDeployPlan} from '../sim/deploy/deploy-flags.js'
import {withDeployDefaults} from '../sim/deploy/deploy-defaults.js'
import type {DeployRecord} from '../sim/deploy/deploy-types.js'

export default class Canary extends DeployCommand {
  static override description =
    "Shift traffic to a new version step by step, promoting it only while its live success rate and p99 hold; after --failure-threshold failed checks it rolls back by itself (exit 4). The service's deploy: block in mesh.yaml gives the defaults; a flag given wins."
  static override enableJsonFlag = true
  static override examples = [
    '<%= config.bin %> canary catalog --to v2',
    '<%= config.bin %> canary catalog --to v2 --steps 10,50,100 --interval 30s --max-error-rate 1% --max-p99 300ms',
    '<%= config.bin %> canary catalog --to v2 --match x-canary=true --load 50',
    "<%= config.bin %> canary catalog --to v2 --check 'npm run e2e -- --base-url $CANARY_URL'",
  ]
  static override args = {service: Args.string({description: 'service to deploy', required: true})}
  static override flags = {
    ...versionFlags,
    // No flag here has a default of its own: the service's deploy: block gives it first (deploy-defaults.ts).
    steps: Flags.string({description: 'traffic percentages to the canary, ending at 100 (default 5,25,50,100, or deploy.steps)'}),
    interval: Flags.string({description: 'analysis interval at each step (default 10s, or deploy.interval)'}),
    'max-error-rate': Flags.string({description: "the canary's error rate must stay at or below this (default 1%, or deploy.maxErrorRate)"}),
    'max-p99': Flags.string({description: "the canary's p99 must stay at or below this (or deploy.maxP99)"}),
    'compare-to-primary': Flags.boolean({allowNo: true, description: 'judge the canary relative to the primary (error rate + allowance, p99 ≤ 1.5 × primary)'}),
    'failure-threshold': Flags.integer({description: 'failed checks before rolling back (default 2, or deploy.failureThreshold)'}),
    'min-requests': Flags.integer({description: 'canary requests needed per interval for a verdict, fewer is inconclusive (default 20, or deploy.minRequests)'}),
    match: Flags.string({description: 'header=value: send only matching requests to the canary first, for one interval (or deploy.match)'}),
    mirror: Flags.boolean({allowNo: true, description: "first mirror every request to the canary for one interval (its answers discarded: callers never see them) and analyse it on that traffic, as Flagger's traffic mirroring"}),
    load: Flags.integer({description: 'drive this many requests/s through the ingress during the analysis (on the route to SERVICE, or to the nearest service that calls it)'}),
  }

  async run(): Promise<DeployRecord> {
    const {args, flags} = await this.parse(Canary)
    const declared = (await this.declaredDeploys(flags.file)).get(args.service)
    const plan = parseDeployPlan(args.service, 'canary', withDeployDefaults({
      to: flags.to,
      steps: flags.steps,
      interval: flags.interval,
      maxErrorRate: flags['max-error-rate'],
      maxP99: flags['max-p99'],
      compareToPrimary: flags['compare-to-primary'],
      failureThreshold: flags['failure-threshold'],
      minRequests: flags['min-requests'],
      match: flags.match,
      mirror: flags.mirror,
      load: flags.load,
      command: flags.command,
      env: flags.env,
      set: flags.set,
      progressDeadline: flags['progress-deadline'],
      check: flags.check,
    }, declared, 'canary'))
    return this.deploy(flags.file, plan, flags.detach)
  }
}
