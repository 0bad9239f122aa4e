import {Args, Flags} from '@oclif/core'
import {execa} from 'execa'
import {MeshCommand} from '../cli/mesh-command.js'
import {parseTarget} from '../sim/faults/fault-flags.js'

export default class Exec extends MeshCommand {
  static override description =
    'Run a command as an instance of a service, as `docker compose exec` does: with its environment — its env, PORT, MESH_*, ' +
    'a <DEP>_URL per dependency and HTTP_PROXY — in its directory, so what the command calls goes through that instance\'s sidecar ' +
    '(and is traced and counted as coming from it). Without a command, your shell. Exits with the command\'s exit code.'
  static override examples = [
    "<%= config.bin %> exec frontend -- sh -c 'curl -s $CATALOG_URL/items'",
    '<%= config.bin %> exec api@v2 -- npm run migrate',
    '<%= config.bin %> exec api --instance api-v1-1',
  ]
  // Everything after SERVICE is the command and its own flags.
  static override strict = false
  static override args = {service: Args.string({description: 'SERVICE or SERVICE@VERSION', required: true})}
  static override flags = {
    instance: Flags.string({description: 'this instance (default: the first healthy one)'}),
  }

  async run(): Promise<void> {
    const {args, argv, flags} = await this.parse(Exec)
    const command = (argv as string[]).slice(1)
    const {service, version} = parseTarget(args.service)
    const target = await this.connect(flags.file).execTarget(service, version, flags.instance)
    const [file, ...rest] = command.length > 0 ? command : [process.env.SHELL ?? 'sh']
    const child = await execa(file, rest, {stdio: 'inherit', cwd: target.cwd, env: target.env, reject: false})
    if (child.failed && child.exitCode === undefined) this.error(`could not run ${file}: ${child.shortMessage}`, {exit: 127})
    this.exit(child.exitCode ?? 1)
  }
}
