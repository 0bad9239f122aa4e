import chalk from 'chalk'
import {formatSize} from '../sim/config/duration.js'
import {MeshCommand} from '../cli/mesh-command.js'
import {renderTable} from '../cli/table.js'
import {describeLoad, describeSecurity, edgeSecurity, type InstanceStatus, isDefaultSecurity, type MeshStatus} from '../sim/control/status.js'
import {STOPPED_BY_MESH_STOP} from '../sim/proxy/respond.js'

export default class Status extends MeshCommand {
  static override description = 'Show services, versions, instances (pid, ports, health, restarts) and the ingress address.'
  static override enableJsonFlag = true
  // compose's name for it.
  static override aliases = ['ps']

  async run(): Promise<MeshStatus> {
    const {flags} = await this.parse(Status)
    const status = await this.connect(flags.file).status()
    if (!this.jsonEnabled()) this.log(renderStatus(status))
    return status
  }
}

function health(i: InstanceStatus): string {
  if (i.state === 'backoff' || i.state === 'crash-loop') {
    return chalk.red(i.state === 'crash-loop' ? 'crash-loop' : 'crashed, restarting')
  }
  if (i.health === 'healthy' && i.ejected) return chalk.red(`ejected (${i.ejected.reason})`)
  if (i.health === 'healthy') return chalk.green('healthy')
  if (i.health === 'unhealthy') return chalk.red('unhealthy')
  if (i.health === 'completed') return chalk.green('completed')
  if (i.health === 'failed') return chalk.red(`failed (${i.healthDetail ?? 'exited'})`)
  if (i.health === 'running') return chalk.yellow('running (job)')
  return chalk.yellow('starting')
}

export function renderStatus(s: MeshStatus): string {
  const head = `mesh ${chalk.bold(s.name)} — ${s.phase}` + (s.ingress ? `, ingress ${chalk.cyan(s.ingress.url)}` + (s.ingress.httpsUrl ? ` and ${chalk.cyan(s.ingress.httpsUrl)}` : '') : '')
  const rows: string[][] = []
  const notes: string[] = []
  const securityOf = new Map(s.services.map((x) => [x.name, x.security]))
  for (const svc of s.services) {
    if (svc.deploy) notes.push(chalk.cyan(`${svc.name}: deploying — ${svc.deploy}`))
    for (const v of svc.versions) if (v.heldBack) notes.push(chalk.cyan(`${svc.name} ${v.name}: held back — ${v.heldBack}`))
    if (svc.faults.length) notes.push(chalk.magenta(`${svc.name}: faults ${svc.faults.join('; ')}`))
    if (svc.tcp) {
      const t = svc.tcp
      const what = svc.protocol === 'tcp' ? 'protocol tcp — ' : 'WebSocket (Upgrade) sessions: '
      const unit = svc.protocol === 'tcp' ? 'connection' : 'session'
      notes.push(`${svc.name}: ${what}${t.open} ${unit}${t.open === 1 ? '' : 's'} open, ${t.opened} opened since mesh up; ${formatSize(t.receivedBytes)} in, ${formatSize(t.sentBytes)} out (closed ones)`)
    }
    if (svc.notStarted) {
      const how =
        svc.notStarted === STOPPED_BY_MESH_STOP
          ? `\`mesh start ${svc.name}\``
          : svc.profiles
            ? `\`mesh up ${svc.name}\` or \`mesh up -d --profile ${svc.profiles[0]}\``
            : `\`mesh up ${svc.name}\``
      notes.push(chalk.dim(`${svc.name}: not started (${svc.notStarted}); ${how} starts it`))
    }
    if (svc.watching) notes.push(`${svc.name}: watching ${svc.watching.join(', ')} (a change restarts it, one instance at a time)`)
    const load = describeLoad(svc.name, svc.load)
    if (load) notes.push(load)
    const security = describeSecurity(svc.security)
    const edges = svc.dependsOn.map((d) => [d, edgeSecurity(securityOf.get(d))])
    if (!isDefaultSecurity(svc.security) || edges.some(([, e]) => e !== 'none')) {
      const calls = edges.map(([d, e]) => `→ ${d} ${e}`).join(', ')
      notes.push(`${svc.name}: ${security ?? 'plaintext'}${calls ? `; calls ${calls}` : ''}`)
    }
    for (const a of svc.scaling ?? []) {
      const who = svc.versions.length > 1 ? `${svc.name} ${a.version}` : svc.name
      const cold = a.coldStartMs === undefined ? '' : `; last cold start ${a.coldStartMs} ms`
      if (a.scaledToZero) notes.push(`${who}: scaled to zero — its next request starts an instance${cold}`)
      else notes.push(`${who}: autoscaled, desired ${a.desired}, actual ${a.actual}${a.panic ? chalk.yellow(' (panic)') : ''}${a.reason ? ` — ${a.reason}` : ''}${cold}`)
      if (a.startFailed) {
        notes.push(chalk.red(`${who}: cold start failed at ${a.startFailed.at}: ${a.startFailed.reason} A request after ${a.startFailed.retryAt} tries again; its log ended:`))
        for (const line of a.startFailed.logTail.slice(-5)) notes.push(chalk.dim(`  ${line}`))
      }
    }
    if (svc.scaleFailed) {
      const f = svc.scaleFailed
      notes.push(chalk.red(`${svc.versions.length > 1 ? `${svc.name} ${f.version}` : svc.name}: scale-up failed at ${f.at.slice(11, 19)}: ${f.reason} (the autoscaler retries; \`mesh logs ${svc.name}\` says more)`))
    }
    if (svc.panic) notes.push(chalk.yellow(`${svc.name}: panic mode — fewer than half its instances are available, so traffic goes to all of them`))
    for (const i of svc.instances) {
      const version = svc.versions.length > 1 ? `${i.version} (${svc.versions.find((v) => v.name === i.version)?.weight ?? 0}%)` : i.version
      const exit = i.lastExit ? ` (last exit ${i.lastExit.code ?? i.lastExit.signal})` : ''
      rows.push([svc.protocol ? `${svc.name} (${svc.protocol})` : svc.name, version, i.instance, String(i.pid ?? '-'), i.address, i.inboundAddress, health(i), `${i.restarts}${exit}`])
    }
  }
  for (const k of s.jwks ?? []) {
    if (!k.error) continue
    const held = k.kids.length > 0 ? `the ${k.kids.length} key${k.kids.length === 1 ? '' : 's'} fetched before still verify` : `no keys: tokens from ${k.issuer} are refused (401)`
    notes.push(chalk.red(`${k.owner}: jwksUri ${k.uri} failing since ${k.failingSince}: ${k.error}; ${held}`))
  }
  const table = renderTable(['SERVICE', 'VERSION', 'INSTANCE', 'PID', 'ADDRESS', 'SIDECAR', 'HEALTH', 'RESTARTS'], rows)
  return [head, table, ...notes].join('\n')
}
