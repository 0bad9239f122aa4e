import path from 'node:path'
import {Args, Flags} from '@oclif/core'
import chalk from 'chalk'
import {MeshCommand} from '../../cli/mesh-command.js'
import {formatIssue} from '../../sim/config/config-error.js'
import {defaultComposeFile} from '../../sim/import/compose-file.js'
import {importCompose, type ComposeImportResult} from '../../sim/import/import-compose.js'
import {formatLoss} from '../../sim/import/loss.js'

export default class ImportCompose extends MeshCommand {
  static override description = 'Write a mesh.yaml from a docker compose file: commands, environment, dependencies, health checks, profiles, restarts and replicas carried over, image-only services as address: (with how to run them) or simulate: stand-ins, and every field not carried over listed at its line.'
  static override enableJsonFlag = true
  static override examples = [
    '<%= config.bin %> import compose',
    '<%= config.bin %> import compose docker-compose.yml --out mesh.yaml --force',
    '<%= config.bin %> import compose --simulate-images --out -',
  ]
  // Reads no mesh.yaml: it writes one (--out).
  static override baseFlags = {}
  static override args = {file: Args.string({description: 'the compose file (default: compose.yaml, compose.yml, docker-compose.yaml or docker-compose.yml here)'})}
  static override flags = {
    out: Flags.string({char: 'o', description: 'where to write mesh.yaml (- prints it)', default: 'mesh.yaml'}),
    force: Flags.boolean({description: 'overwrite --out if it exists'}),
    'simulate-images': Flags.boolean({description: 'image-only services as simulate: stand-ins rather than address: services'}),
  }

  async run(): Promise<Omit<ComposeImportResult, 'yaml'>> {
    const {args, flags} = await this.parse(ImportCompose)
    const result = await importCompose({
      composeFile: args.file ?? defaultComposeFile(process.cwd()),
      out: flags.out,
      force: flags.force,
      simulateImages: flags['simulate-images'],
    })
    if (flags.out === '-' && !this.jsonEnabled()) process.stdout.write(result.yaml)
    if (!this.jsonEnabled()) {
      for (const w of result.warnings) this.logToStderr(chalk.yellow(formatIssue(w)))
      for (const loss of result.losses) this.logToStderr(chalk.yellow(formatLoss(loss)))
      const as = (kind: string, what: string) => `${result.services.filter((s) => s.as === kind).length} ${what}`
      const summary = `${result.services.length} services (${as('command', 'run by their command')}, ${as('address', 'at an address')}, ${as('simulate', 'simulated')}); ${result.losses.length} fields not carried over or changed, listed above`
      const from = path.relative(process.cwd(), result.from)
      // Printed mesh.yaml owns stdout: the summary goes beside the report, on stderr.
      if (result.written === '-') this.logToStderr(`${chalk.green('✔')} imported ${from}: ${summary}.`)
      else this.log(`${chalk.green('✔')} wrote ${path.relative(process.cwd(), result.written)} from ${from}: ${summary}. Next: mesh up.`)
    }
    const {yaml, ...rest} = result
    return flags.out === '-' ? {...rest, yaml} as Omit<ComposeImportResult, 'yaml'> : rest
  }
}
