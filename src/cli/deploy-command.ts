// What `mesh rollout`, `mesh canary` and `mesh restart` share: the version flags, starting the
// deploy in the daemon, following it, and the exit code of its outcome.
import {Flags} from '@oclif/core'
import {MeshCommand} from './mesh-command.js'
import {Listr} from 'listr2'
import {followDeploy, outcomeLine} from './deploy-progress.js'
import type {ControlClient} from '../sim/control/control-client.js'
import {type DeployPlan, type DeployRecord, succeeded} from '../sim/deploy/deploy-types.js'
import {ExitCode} from '../sim/errors.js'
import {loadConfig} from '../sim/config/load-config.js'
import type {DeployConfig} from '../sim/config/types.js'
import path from 'node:path'

export const versionFlags = {
  to: Flags.string({description: 'the version to deploy (a versions: entry, or a new one made with the flags below)', required: true}),
  command: Flags.string({description: 'run the new version with this command'}),
  env: Flags.string({description: 'KEY=VALUE for the new version (repeatable)', multiple: true}),
  set: Flags.string({description: 'change the new simulated version: simulate.errorRate=0.2, simulate.latency.p99=300ms (repeatable)', multiple: true}),
  'progress-deadline': Flags.string({description: 'give up when a new instance is not healthy within this long (default 60s, or deploy.progressDeadline)'}),
  detach: Flags.boolean({char: 'd', description: 'start the deploy and return; follow it with `mesh history SERVICE`'}),
  check: Flags.string({
    description:
      "canary and blue-green: an acceptance test run once the new instances are healthy, before any traffic moves (Flagger's pre-rollout webhook); $CANARY_URL reaches the first new instance through its sidecar ($CANARY_URLS: all of them); a non-zero exit rolls back",
  }),
}

export abstract class DeployCommand extends MeshCommand {
  /** The services' `deploy:` blocks in mesh.yaml, by service: the defaults of the flags not given. */
  protected async declaredDeploys(file: string): Promise<Map<string, DeployConfig>> {
    const config = await loadConfig(path.resolve(file))
    return new Map(config.services.flatMap((s) => (s.deploy ? [[s.name, s.deploy] as const] : [])))
  }

  protected async deploy(file: string, plan: DeployPlan, detach: boolean): Promise<DeployRecord> {
    const client = this.connect(file)
    const started = await client.deploy(plan)
    if (detach) {
      if (!this.jsonEnabled()) this.log(`deploy ${started.id} started: ${started.plan.strategy} ${started.plan.service} → ${started.plan.to}`)
      return started
    }
    const record = this.jsonEnabled() || !process.stdout.isTTY
      ? await followDeploy(client, started, (l) => this.log(l), this.jsonEnabled())
      : await followWithProgress(client, started)
    if (!this.jsonEnabled()) this.log(outcomeLine(record))
    // The record is the --json output; the exit code still says how it ended.
    if (record.outcome === 'rolled-back') process.exitCode = ExitCode.rolledBack
    else if (record.outcome === 'failed') process.exitCode = ExitCode.failure
    return record
  }
}

/** On a terminal: a listr2 task whose output lines are the steps, kept on screen. */
async function followWithProgress(client: ControlClient, started: DeployRecord): Promise<DeployRecord> {
  let record = started
  const {plan} = started
  await new Listr(
    [
      {
        title: `${plan.strategy} ${plan.service} → ${plan.to} (${started.id})`,
        task: async (_ctx, task) => {
          record = await followDeploy(client, started, (line) => (task.output = line), false)
          task.title = `${task.title}: ${record.outcome}`
          if (!succeeded(record.outcome)) throw new Error(record.steps.at(-1)?.message ?? record.outcome)
        },
        rendererOptions: {persistentOutput: true, outputBar: Infinity},
      },
    ],
    {exitOnError: false, rendererOptions: {collapseErrors: false}},
  )
    .run()
    .catch(() => undefined)
  return record
}
