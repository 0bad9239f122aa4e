import chalk from 'chalk'
import {MeshCommand} from '../cli/mesh-command.js'
import {renderTable} from '../cli/table.js'
import {formatDuration} from '../sim/config/duration.js'
import {describeFault, type FaultInfo, type FaultSpec, PER_REQUEST_KINDS} from '../sim/faults/fault.js'

export default class Faults extends MeshCommand {
  static override description = 'List the active faults: id, target, kind, selectors, requests hit of those seen, and time left.'
  static override enableJsonFlag = true
  static override examples = ['<%= config.bin %> faults', '<%= config.bin %> faults --json']

  async run(): Promise<FaultInfo[]> {
    const {flags} = await this.parse(Faults)
    const faults = await this.connect(flags.file).faults()
    if (!this.jsonEnabled()) this.log(renderFaults(faults, Date.now()))
    return faults
  }
}

export function renderFaults(faults: FaultInfo[], nowMs: number): string {
  if (faults.length === 0) return 'No active faults. Add one with `mesh inject-fault SERVICE --abort 503`.'
  const rows = faults.map((f) => {
    // Process, certificate and key-fetch faults choose no requests.
    const process = !PER_REQUEST_KINDS.includes(f.kind)
    return [
      f.id,
      faultTarget(f),
      describeFault(f) + (f.instances?.length ? ` (${f.instances.join(', ')})` : ''),
      describeSelectors(f).join(', ') || (process ? '-' : 'every request'),
      process ? '-' : `${f.hits}/${f.seen}`,
      timeLeft(f, nowMs),
    ]
  })
  return renderTable(['ID', 'TARGET', 'KIND', 'SELECTORS', 'HITS/SEEN', 'LEFT'], rows)
}

/** 'payments' or 'payments@v2' */
export function faultTarget(f: FaultSpec): string {
  return f.version ? `${f.service}@${f.version}` : f.service
}

/** What chooses the requests a fault hits, as the flags that set it read: ['30%', 'from cart', 'at caller']. */
export function describeSelectors(f: FaultSpec): string[] {
  const out: string[] = []
  if (f.first !== undefined) out.push(`first ${f.first}`)
  else if (f.percent !== undefined && f.percent < 100) out.push(`${f.percent}%`)
  if (f.from) out.push(`from ${f.from}`)
  if (f.header) out.push(`header ${f.header.name}=${f.header.value}`)
  if (f.pathPrefix) out.push(`path ${f.pathPrefix}*`)
  if (f.seed !== undefined) out.push(`seed ${f.seed}`)
  if (f.at === 'caller') out.push('at caller')
  return out
}

function timeLeft(f: FaultInfo, nowMs: number): string {
  if (!f.expiresAt) return chalk.dim('until cleared')
  const left = Date.parse(f.expiresAt) - nowMs
  return left <= 0 ? 'expiring' : formatDuration(Math.ceil(left / 1000) * 1000)
}
