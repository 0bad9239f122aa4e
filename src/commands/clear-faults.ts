import {Args, Flags} from '@oclif/core'
import chalk from 'chalk'
import {MeshCommand} from '../cli/mesh-command.js'
import {MeshError} from '../sim/errors.js'
import {describeFault, type FaultInfo} from '../sim/faults/fault.js'
import {faultTarget} from './faults.js'

export default class ClearFaults extends MeshCommand {
  static override description = 'Remove faults: one by id, every fault on a service, or all of them with --all.'
  static override enableJsonFlag = true
  static override examples = ['<%= config.bin %> clear-faults f3', '<%= config.bin %> clear-faults payments', '<%= config.bin %> clear-faults --all']
  static override args = {which: Args.string({description: 'a fault id (as `mesh faults` lists it) or a service name'})}
  static override flags = {
    all: Flags.boolean({description: 'remove every fault'}),
  }

  async run(): Promise<FaultInfo[]> {
    const {args, flags} = await this.parse(ClearFaults)
    if (args.which && flags.all) throw badFlag(`give either ${args.which} or --all, not both.`)
    if (!args.which && !flags.all) {
      throw badFlag('say which faults to remove.', ['Pass a fault id (`mesh faults` lists them), a service name, or --all.'])
    }
    const client = this.connect(flags.file)
    let removed: FaultInfo[]
    if (flags.all) removed = await client.clearFaults({})
    else {
      const which = args.which!
      const active = await client.faults()
      if (active.some((f) => f.id === which)) removed = await client.clearFaults({id: which})
      else if ((await client.status()).services.some((s) => s.name === which)) removed = await client.clearFaults({service: which})
      else {
        throw new MeshError('MESH_FAULT_NOT_FOUND', `"${which}" is neither an active fault nor a service in the mesh.`, {
          hints: [active.length ? `Active faults: ${active.map((f) => `${f.id} (${faultTarget(f)})`).join(', ')}` : 'No fault is active.', 'See them with `mesh faults`.'],
        })
      }
    }
    if (!this.jsonEnabled()) {
      if (removed.length === 0) this.log(flags.all ? 'No faults were active.' : `No faults on ${args.which}.`)
      for (const f of removed) this.log(`${chalk.green('removed')} ${f.id} ${describeFault(f)} on ${faultTarget(f)}`)
    }
    return removed
  }
}

function badFlag(message: string, hints: string[] = []): MeshError {
  return new MeshError('MESH_BAD_FLAG', message, {hints})
}
