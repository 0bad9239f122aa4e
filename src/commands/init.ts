import {Flags} from '@oclif/core'
import chalk from 'chalk'
import {MeshCommand} from '../cli/mesh-command.js'
import {listTemplates, writeTemplate} from '../sim/templates/templates.js'

export default class Init extends MeshCommand {
  static override description = 'Write a starter mesh.yaml (and sample services) from a template.'
  static override enableJsonFlag = true
  static override examples = ['<%= config.bin %> init', '<%= config.bin %> init --template shop', '<%= config.bin %> init --list', '<%= config.bin %> init --template large --services 100 --depth 6 --fanout 3']
  // Reads no mesh.yaml: no --file.
  static override baseFlags = {}
  static override flags = {
    template: Flags.string({char: 't', description: 'template to use (see --list)', default: 'minimal'}),
    list: Flags.boolean({description: 'list the templates'}),
    force: Flags.boolean({description: 'overwrite existing files'}),
    dir: Flags.string({description: 'directory to write into', default: '.'}),
    services: Flags.integer({description: 'large: how many services to generate (default 100)'}),
    depth: Flags.integer({description: 'large: most services on one path from the ingress (default 6)'}),
    fanout: Flags.integer({description: 'large: most services one service calls (default 3, more if --services needs it)'}),
    seed: Flags.integer({description: 'large: the seed; the same seed writes the same file (default 1)'}),
  }

  async run(): Promise<unknown> {
    const {flags} = await this.parse(Init)
    if (flags.list) {
      const templates = await listTemplates()
      if (!this.jsonEnabled()) {
        const width = Math.max(...templates.map((t) => t.name.length)) + 2
        for (const t of templates) this.log(`${chalk.bold(t.name.padEnd(width))}${t.description}`)
      }
      return templates
    }
    const generator = {services: flags.services, depth: flags.depth, fanout: flags.fanout, seed: flags.seed}
    const written = await writeTemplate(flags.template, flags.dir, {force: flags.force, generator})
    const next = (await listTemplates()).find((t) => t.name === flags.template)?.next
    if (!this.jsonEnabled()) {
      for (const f of written) this.log(`${chalk.green('created')} ${f}`)
      this.log(next ? `\nNext: ${chalk.bold(next)}` : `\nNext: ${chalk.bold('mesh up')} (or ${chalk.bold('mesh up -d')} to run it in the background).`)
    }
    return {template: flags.template, written, ...(next ? {next} : {})}
  }
}
