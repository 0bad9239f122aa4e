import {Args, Flags} from '@oclif/core'
import chalk from 'chalk'
import {renderAccessLines} from '../cli/access-log.js'
import {MeshCommand, fileFlag} from '../cli/mesh-command.js'
import {followLogs} from '../cli/follow-logs.js'
import {prefixed} from '../cli/instance-colours.js'
import {instanceLogFiles, tailLines} from '../sim/control/log-files.js'
import {readState} from '../sim/control/state-file.js'
import {MeshError, serviceNotFound} from '../sim/errors.js'
import {loadConfig} from '../sim/config/load-config.js'
import path from 'node:path'

export default class Logs extends MeshCommand {
  static override description =
    "Show instance logs, prefixed and coloured per instance; -f follows them; --access shows the sidecars' access logs."
  static override examples = ['<%= config.bin %> logs', '<%= config.bin %> logs catalog -f', '<%= config.bin %> logs --tail 20']
  static override args = {service: Args.string({description: 'only this service'})}
  static override flags = {
    file: fileFlag(false),
    follow: Flags.boolean({char: 'f', description: 'keep printing new lines until Ctrl-C'}),
    tail: Flags.integer({char: 'n', description: 'lines to show from the end of each log', default: 100}),
    access: Flags.boolean({
      description: "the sidecars' access logs (one line per hop) instead of the instances' own logs; on with `telemetry: {accessLog: true}` in mesh.yaml",
    }),
  }

  async run(): Promise<void> {
    const {args, flags} = await this.parse(Logs)
    const meshPaths = this.meshPaths(flags.file)
    // Access logs sit beside instance logs, one file per instance (and ingress.log): same layout, other folder.
    const paths = flags.access ? {...meshPaths, logs: meshPaths.access} : meshPaths
    const render = (lines: string[]) => (flags.access ? renderAccessLines(lines, chalk.level > 0) : lines)
    const {services, accessLog} = await meshFacts(flags.file, meshPaths)
    if (args.service && !services.includes(args.service)) {
      throw serviceNotFound(args.service, services)
    }
    const files = instanceLogFiles(paths, services, args.service)
    if (files.size === 0 && flags.access && !accessLog) {
      throw new MeshError('MESH_NO_LOGS', 'access logs are off (as in Istio and Linkerd, they cost more than anything else per request).', {
        hints: ['Turn them on with `telemetry: {accessLog: true}` in mesh.yaml, then `mesh apply` (or `mesh up` if the mesh is not running).'],
      })
    }
    if (files.size === 0) {
      throw new MeshError('MESH_NO_LOGS', 'no logs yet.', {hints: ['Start the mesh with `mesh up -d` first.']})
    }
    const width = Math.max(...[...files.keys()].map((k) => k.length))
    for (const [instance, file] of files) {
      for (const line of render(tailLines(file, flags.tail))) this.log(prefixed(instance, width, line))
    }
    if (!flags.follow) return
    const stop = followLogs(paths, services, args.service, {fromEnd: true, render}, (line) => this.log(line))
    await new Promise<void>((resolve) => process.once('SIGINT', resolve))
    stop()
  }
}

/** Services from mesh.yaml when it parses, else from the running mesh's state; and whether access logs are on. */
async function meshFacts(file: string, paths: ReturnType<MeshCommand['meshPaths']>): Promise<{services: string[]; accessLog: boolean}> {
  try {
    const config = await loadConfig(path.resolve(file))
    return {services: config.services.map((s) => s.name), accessLog: config.telemetry?.accessLog === true}
  } catch {
    const state = readState(paths)
    return {services: [...new Set(state?.children.map((c) => c.service) ?? [])], accessLog: false}
  }
}
