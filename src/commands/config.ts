import {Flags} from '@oclif/core'
import {MeshCommand} from '../cli/mesh-command.js'
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
  static override examples = ['<%= config.bin %> config', 'GREETING=hi <%= config.bin %> config -f demo/mesh.yaml', '<%= config.bin %> config --json', '<%= config.bin %> config --services']
  static override flags = {
    services: Flags.boolean({description: 'only the service names, one per line (as docker compose config --services)', exclusive: ['profiles']}),
    profiles: Flags.boolean({description: 'only the profile names the services use, one per line (as docker compose config --profiles)'}),
  }

  async run(): Promise<MeshConfig | string[]> {
    const {flags} = await this.parse(Config)
    const {config, warnings, resolved} = await loadConfigWithWarnings(path.resolve(flags.file))
    for (const w of warnings) this.logToStderr(chalk.yellow(formatIssue(w)))
    const names = flags.services ? config.services.map((s) => s.name) : flags.profiles ? [...new Set(config.services.flatMap((s) => s.profiles ?? []))].sort() : undefined
    if (!this.jsonEnabled()) process.stdout.write(names ? names.map((n) => `${n}\n`).join('') : resolved)
    return names ?? config
  }
}
