import path from 'node:path'
import {Args, Flags} from '@oclif/core'
import chalk from 'chalk'
import {MeshCommand} from '../cli/mesh-command.js'
import {showStartup} from '../cli/startup-progress.js'
import {followLogs} from '../cli/follow-logs.js'
import {loadConfigWithWarnings} from '../sim/config/load-config.js'
import {activeProfiles, servicesToStart, unknownProfiles} from '../sim/config/profiles.js'
import {MeshDaemon, type DaemonEvent} from '../sim/control/daemon.js'
import {assertSupportedPlatform, ensureNotRunning, startDetached} from '../sim/control/lifecycle.js'
import type {MeshStatus} from '../sim/control/status.js'
import {renderStatus} from './status.js'
import {serviceNotFound} from '../sim/errors.js'
import {withProgress} from '../cli/task-progress.js'
import {describeWarmUp, WARM_UP_GRACE_MS, WARM_UP_LIMITS, type WarmUpResult, warmUpTargets} from '../sim/control/warm-up.js'
import {connect} from '../sim/control/control-client.js'

export default class Up extends MeshCommand {
  static override description =
    'Start the mesh: every service behind its sidecar, each once what it depends on is healthy (or running, or completed: dependsOn conditions, as compose). In the foreground it streams logs until Ctrl-C; with -d it returns once every instance is healthy (a one-shot job: completed). ' +
    'Services with profiles: start only when --profile enables one of them (or they are named); on a running mesh, up starts what is not started yet (named, stopped, or in a profile now enabled), and with nothing to start refuses, naming the daemon\'s pid (one mesh per directory). ' +
    'Sidecars speak HTTP/1.1 and HTTP/2 (h2c, gRPC) on every listener; protocol: grpc services are reached over HTTP/2, protocol: tcp ones at L4.'
  static override enableJsonFlag = true
  static override examples = ['<%= config.bin %> up', '<%= config.bin %> up -d', '<%= config.bin %> up -d frontend', '<%= config.bin %> up -d --profile debug', '<%= config.bin %> up -d -f demo/mesh.yaml --json']
  static override strict = false
  static override args = {
    service: Args.string({description: 'start only these services and what they depend on (as docker compose up SERVICE); on a running mesh, start them too'}),
  }
  static override flags = {
    detach: Flags.boolean({char: 'd', description: 'run in the background; return when every instance is healthy'}),
    watch: Flags.boolean({char: 'w', description: "restart a service (one instance at a time, no dropped request) when files under its watch: paths change, as docker compose up --watch"}),
    'no-warm-up': Flags.boolean({description: 'return as soon as every instance is healthy, without the warm-up through every edge (at most ~2 s; never counted in mesh stat, traces or metrics)'}),
    profile: Flags.string({multiple: true, description: "also start the services in this profile (their profiles: list), as docker compose --profile; '*' for all. Default: $MESH_PROFILES (comma-separated)"}),
  }

  async run(): Promise<MeshStatus> {
    const {argv, flags} = await this.parse(Up)
    assertSupportedPlatform()
    const file = path.resolve(flags.file)
    // Nothing starts when the file is wrong.
    const {config, warnings} = await loadConfigWithWarnings(file)
    this.warnUnsetVariables(warnings)
    const only = argv as string[]
    const known = config.services.map((s) => s.name)
    for (const name of only) if (!known.includes(name)) throw serviceNotFound(name, known)
    const profiles = activeProfiles(flags.profile ?? [], process.env.MESH_PROFILES)
    for (const warning of unknownProfiles(config, profiles)) this.logToStderr(chalk.yellow(`warning: ${warning}`))
    // undefined: every service (no names, no profiles in the file).
    const selected = servicesToStart(config, only, profiles)
    const paths = this.meshPaths(file)
    const client = this.running(flags.file)
    if (client) {
      // As compose: `up [SERVICE]` on a running project starts what is not running yet (all of it without names).
      const notStarted = (await client.status()).services.filter((s) => s.notStarted).map((s) => s.name)
      const names = only.length > 0 ? only : notStarted.filter((s) => !selected || selected.includes(s))
      if (names.length > 0) {
        const status = await withProgress(`Starting ${names.join(', ')}`, () => client.start(names, profiles), !this.jsonEnabled() && process.stdout.isTTY === true)
        if (!this.jsonEnabled()) this.log(renderStatus(status))
        return status
      }
    }
    const {cleaned} = await ensureNotRunning(paths)
    if (cleaned.length) this.logToStderr(`Cleaned up after a mesh daemon that died: ${cleaned.join(', ')}`)
    const silent = this.jsonEnabled()

    if (flags.detach) {
      const listeners: Array<(e: DaemonEvent) => void> = []
      const started = startDetached(file, paths, (e) => listeners.forEach((l) => l(e)), {watch: flags.watch, only: selected, profiles})
      await showStartup(config, (fn) => listeners.push(fn), started, {silent, only: selected})
      const status = await started
      if (!flags['no-warm-up']) await this.warmUp(() => connect(paths).warmUp(), silent)
      if (!silent) this.log(`\n${renderStatus(status)}\n\nStop it with ${chalk.bold('mesh down')}.`)
      return status
    }

    const daemon = new MeshDaemon(config, {watch: flags.watch, only: selected, profiles})
    let interrupts = 0
    const stopped = new Promise<number>((resolve) => {
      daemon.once('stopped', () => resolve(0))
      const onSigint = () => {
        interrupts++
        if (interrupts === 1) {
          this.logToStderr(chalk.yellow('\nStopping gracefully… (Ctrl-C again to kill now)'))
          void daemon.stop().then(() => resolve(130))
        } else {
          // Second Ctrl-C: no more grace.
          daemon.killNow()
          process.exit(130)
        }
      }
      process.on('SIGINT', onSigint)
      process.on('SIGTERM', () => void daemon.stop().then(() => resolve(143)))
    })
    const started = daemon.start()
    try {
      await showStartup(config, (fn) => daemon.on('event', fn), started, {silent, only: selected})
    } catch (error) {
      await daemon.stop()
      throw error
    }
    if (!flags['no-warm-up']) await this.warmUp(() => daemon.warmUp.run(warmUpTargets(config, daemon.status())), silent)
    const status = daemon.status()
    if (!silent) this.log(`\n${renderStatus(status)}\n`)
    daemon.on('event', (e: DaemonEvent) => {
      if (e.kind === 'files-changed') this.log(chalk.cyan(`[mesh] ${e.service}: ${describeChange(e.files)} changed; restarting it`))
      if (e.kind === 'deploy-step' && e.step === 'failed') this.log(chalk.red(`[mesh] ${e.service}: ${e.message}`))
      // An instance the autoscaler started that never became ready: said where the developer is looking.
      if (e.kind === 'scale-failed') this.log(chalk.red(`[mesh] ${e.service}: ${e.message}`))
    })
    const stopFollowing = followLogs(paths, config.services.map((s) => s.name), undefined, {fromEnd: false}, (line) => this.log(line))
    const code = await stopped
    stopFollowing()
    if (code !== 0) this.exit(code)
    return status
  }

  /** The warm-up, shown as a step of the start (a spinner on a terminal) and its one-line result. */
  private async warmUp(run: () => Promise<WarmUpResult>, silent: boolean): Promise<void> {
    const title = `Warming up every edge (at most ${(WARM_UP_LIMITS.maxMs + WARM_UP_GRACE_MS) / 1000} s)`
    const result = await withProgress(title, run, !silent && process.stdout.isTTY === true)
    if (!silent && result.requests > 0) this.logToStderr(describeWarmUp(result))
  }
}

/** `src/a.js`, or `src/a.js and 3 more`. */
function describeChange(files: string[]): string {
  return files.length <= 1 ? (files[0] ?? 'a file') : `${files[0]} and ${files.length - 1} more`
}
