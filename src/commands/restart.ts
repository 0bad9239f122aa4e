import {Args} from '@oclif/core'
import {DeployCommand, versionFlags} from '../cli/deploy-command.js'
import {parseRestartPlan} from '../sim/deploy/deploy-flags.js'
import {withDeployDefaults} from '../sim/deploy/deploy-defaults.js'
import type {DeployRecord} from '../sim/deploy/deploy-types.js'
import {serviceNotFound} from '../sim/errors.js'

export default class Restart extends DeployCommand {
  static override description =
    "Restart services' instances one at a time with no dropped request: each new process healthy before the old one is drained (as kubectl rollout restart). Several services go one after another; with none, every service the mesh runs a process for. For code changes; changes to mesh.yaml go through `mesh apply`. --json prints the deploy record, or a list of them when not exactly one SERVICE is named."
  static override enableJsonFlag = true
  static override strict = false
  static override examples = ['<%= config.bin %> restart frontend', '<%= config.bin %> restart catalog cart', '<%= config.bin %> restart', '<%= config.bin %> restart catalog -d']
  static override args = {service: Args.string({description: 'service(s) to restart (default: all)'})}
  static override flags = {
    'progress-deadline': versionFlags['progress-deadline'],
    detach: versionFlags.detach,
  }

  async run(): Promise<DeployRecord | DeployRecord[]> {
    const {argv, flags} = await this.parse(Restart)
    const named = argv as string[]
    const status = await this.connect(flags.file).status()
    const known = status.services.map((s) => s.name)
    // Every name checked first: a typo in the second must not come after the first restarted.
    for (const name of named) if (!known.includes(name)) throw serviceNotFound(name, known)
    // As the daemon decides what a restart replaces: instances the mesh runs (not `address:`),
    // whatever their state right now (a crashed one waiting for its restart has no pid).
    const services = named.length ? named : status.services.filter((s) => s.instances.some((i) => i.kind !== 'address')).map((s) => s.name)
    const declared = await this.declaredDeploys(flags.file)
    const records: DeployRecord[] = []
    for (const service of services) {
      const {progressDeadline} = withDeployDefaults({to: '', progressDeadline: flags['progress-deadline']}, declared.get(service), 'rolling')
      const record = await this.deploy(flags.file, parseRestartPlan(service, {progressDeadline}), flags.detach)
      records.push(record)
      // One at a time: a restart that failed leaves the rest untouched.
      if (record.outcome === 'failed') break
    }
    return named.length === 1 ? records[0] : records
  }
}
