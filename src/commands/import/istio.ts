import path from 'node:path'
import {Args, Flags} from '@oclif/core'
import chalk from 'chalk'
import {MeshCommand} from '../../cli/mesh-command.js'
import {importIstio, type IstioImportResult} from '../../sim/import/import-istio.js'
import {formatLoss} from '../../sim/import/loss.js'

export default class ImportIstio extends MeshCommand {
  static override description = "Write Istio's VirtualService, DestinationRule, PeerAuthentication, AuthorizationPolicy and RequestAuthentication resources into mesh.yaml's policy blocks, for the services it declares (others are listed and skipped), every field with no counterpart listed at its line."
  static override enableJsonFlag = true
  static override strict = false
  static override examples = ['<%= config.bin %> import istio istio/*.yaml --dry-run', '<%= config.bin %> import istio reviews-vs.yaml reviews-dr.yaml']
  static override args = {files: Args.string({description: 'files of Istio resources (several documents each, as kubectl takes them)', required: true})}
  static override flags = {
    'dry-run': Flags.boolean({description: 'show what would change; write nothing'}),
  }

  async run(): Promise<Omit<IstioImportResult, 'yaml'>> {
    const {argv, flags} = await this.parse(ImportIstio)
    const result = await importIstio({meshFile: flags.file, files: argv as string[], dryRun: flags['dry-run']})
    if (!this.jsonEnabled()) {
      for (const loss of result.losses) this.logToStderr(chalk.yellow(formatLoss(loss)))
      for (const c of result.changes) this.log(`${c.path}: ${c.before === undefined ? '(none)' : JSON.stringify(c.before)} → ${JSON.stringify(c.after)}`)
      const file = path.relative(process.cwd(), result.file) || result.file
      if (result.changes.length === 0) this.log(`Nothing to change in ${file}.`)
      else if (flags['dry-run']) this.log(chalk.dim(`--dry-run: ${file} was not changed.`))
      else this.log(`${chalk.green('✔')} ${file}: ${result.changes.length} policy values set. \`mesh apply\` applies them to a running mesh.`)
    }
    const {yaml, ...rest} = result
    return rest
  }
}
