import chalk from 'chalk'
import {MeshCommand} from '../cli/mesh-command.js'
import {renderTable} from '../cli/table.js'
import type {CertificateListing} from '../sim/security/workload-files.js'

export default class Certs extends MeshCommand {
  static override description = `List each workload identity: its SPIFFE ID, the serial and validity of the certificate it presents, and how often it was rotated.

Certificates are rotated at half their life (security.certTTL, 24h by default); \`mesh certs rotate\` rotates them now. A service under a certificate fault (\`mesh inject-fault SERVICE --cert ...\`) is listed with the bad certificate it presents.`
  static override enableJsonFlag = true
  static override examples = ['<%= config.bin %> certs', '<%= config.bin %> certs --json', '<%= config.bin %> certs rotate cart']

  async run(): Promise<CertificateListing[]> {
    const {flags} = await this.parse(Certs)
    const certs = await this.connect(flags.file).certs()
    if (!this.jsonEnabled()) this.log(renderCerts(certs))
    return certs
  }
}

export function renderCerts(certs: CertificateListing[]): string {
  if (certs.length === 0) return 'No certificates issued yet: each service gets one when its first instance starts.'
  const time = (iso: string) => iso.replace(/\.\d+Z$/, 'Z')
  const rows = certs.map((c) => [c.service, c.spiffeId || chalk.dim('localhost, 127.0.0.1, ::1'), c.serial, time(c.notBefore), time(c.notAfter), String(c.rotations), c.fault ? chalk.red(c.fault) : '-'])
  return renderTable(['SERVICE', 'IDENTITY', 'SERIAL', 'NOT BEFORE', 'NOT AFTER', 'ROTATIONS', 'FAULT'], rows)
}
