import {MeshCommand} from '../cli/mesh-command.js'
import chalk from 'chalk'
import path from 'node:path'
import {ConfigError, formatIssue, VALIDATE_HINT} from '../sim/config/config-error.js'
import {describeLeftForInstances} from '../sim/config/interpolate.js'
import {loadConfigWithWarnings} from '../sim/config/load-config.js'
import type {ConfigIssue} from '../sim/config/types.js'

export default class Validate extends MeshCommand {
  static override description = 'Check mesh.yaml and print every problem with its line and column (limits included: replicas, name lengths), resilience warnings, and which $VARIABLES in command: it left for each instance\'s shell.'
  static override enableJsonFlag = true
  static override examples = ['<%= config.bin %> validate', '<%= config.bin %> validate -f demo/mesh.yaml --json']

  async run(): Promise<{file: string; valid: true; services: number; warnings: ConfigIssue[]; leftForInstances: Record<string, string[]>}> {
    const {flags} = await this.parse(Validate)
    const {config, warnings, leftForInstances} = await loadConfigWithWarnings(path.resolve(flags.file)).catch((error: unknown) => {
      // Telling the user of `mesh validate` to run `mesh validate` would be noise.
      throw error instanceof ConfigError ? Object.assign(error, {hints: error.hints.filter((h) => h !== VALIDATE_HINT)}) : error
    })
    for (const w of warnings) this.logToStderr(chalk.yellow(formatIssue(w)))
    const left = Object.fromEntries([...leftForInstances].map(([name, services]) => [name, [...services]]))
    const leftLine = describeLeftForInstances(left)
    if (leftLine) this.log(chalk.dim(leftLine))
    const instances = config.services.reduce((n, s) => n + s.versions.reduce((m, v) => m + v.replicas, 0), 0)
    const scaled = config.services.filter((s) => s.versions.some((v) => v.scaling)).length
    const count = (n: number, what: string) => `${n} ${what}${n === 1 ? '' : 's'}`
    const start = `${count(instances, 'instance')} at start${scaled ? `, ${scaled} autoscaled` : ''}`
    this.log(`${chalk.green('✔')} ${flags.file} is valid: mesh "${config.name}", ${count(config.services.length, 'service')}, ${start}.`)
    return {file: config.file, valid: true, services: config.services.length, warnings, leftForInstances: left}
  }
}

export {ConfigError}
