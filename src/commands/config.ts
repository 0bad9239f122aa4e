import {MeshCommand, fileFlag} from '../cli/mesh-command.js'
import chalk from 'chalk'
import path from 'node:path'
import {formatIssue} from '../sim/config/config-error.js'
import {loadConfigWithWarnings} from '../sim/config/load-config.js'
import type {MeshConfig} from '../sim/config/types.js'

export default class Config extends MeshCommand {
  static override description =
    'Print mesh.yaml as the mesh reads it, as `docker compose config` does: ${VAR} substituted from the shell and .env, comments kept. ' +
    'With --json: the whole configuration after checking, every default filled in (durations in ms).'
  static override enableJsonFlag = true
  static override examples = ['<%= config.bin %> config', 'GREETING=hi <%= config.bin %> config -f demo/mesh.yaml', '<%= config.bin %> config --json']
  static override flags = {file: fileFlag()}

  async run(): Promise<MeshConfig> {
    const {flags} = await this.parse(Config)
    const {config, warnings, resolved} = await loadConfigWithWarnings(path.resolve(flags.file))
    for (const w of warnings) this.logToStderr(chalk.yellow(formatIssue(w)))
    if (!this.jsonEnabled()) process.stdout.write(resolved)
    return config
  }
}
