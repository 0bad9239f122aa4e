import {Flags} from '@oclif/core'
import chalk from 'chalk'
import {MeshCommand} from '../cli/mesh-command.js'
import {loadConfigWithWarnings} from '../sim/config/load-config.js'
import type {ApplyResult} from '../sim/control/policy-diff.js'
import path from 'node:path'
import {withProgress} from '../cli/task-progress.js'

export default class Apply extends MeshCommand {
  static override description =
    'Re-read mesh.yaml and apply it to the running mesh without dropping requests: policies, traffic weights, ingress routes, telemetry (access logs, sampling, OTLP push) and fault headers in place, services and versions added and removed, replicas by scaling, a changed command, cwd, env or simulation by replacing instances one at a time; anything else it names as needing `mesh down && mesh up`. Warns when this moves traffic back from a version a deploy promoted. --dry-run says what it would change, and changes nothing.'
  static override enableJsonFlag = true
  static override flags = {
    'dry-run': Flags.boolean({description: 'say what apply would change, and change nothing (as kubectl apply --dry-run)'}),
  }

  async run(): Promise<ApplyResult> {
    const {flags} = await this.parse(Apply)
    // Check the file here first, so errors carry line:column and nothing reaches the daemon.
    this.warnUnsetVariables((await loadConfigWithWarnings(path.resolve(flags.file))).warnings)
    const client = this.connect(flags.file)
    const dry = flags['dry-run']
    const result = dry ? await client.apply(process.env, true) : await withProgress('Applying mesh.yaml', () => client.apply(process.env), !this.jsonEnabled() && process.stdout.isTTY === true)
    if (!this.jsonEnabled()) {
      if (result.changes.length === 0) this.log(result.notApplied.length ? `Nothing ${dry ? 'would be ' : ''}applied.` : 'No changes: the mesh runs as mesh.yaml says.')
      for (const c of result.changes) this.log(`${chalk.green(dry ? 'would apply' : 'applied')} ${c}`)
      for (const n of result.notApplied) this.log(`${chalk.yellow(dry ? 'would not apply' : 'not applied')} ${n}`)
      if (dry && result.changes.length > 0) this.log(chalk.dim('Dry run: nothing changed. `mesh apply` makes these changes.'))
    }
    // On stderr as `mesh validate` warns, so --json users see it too; last, so it stays on screen.
    for (const w of result.warnings) this.logToStderr(chalk.yellow(`warning: ${w}`))
    return result
  }
}
