import {Args} from '@oclif/core'
import {MeshCommand} from '../../cli/mesh-command.js'
import type {CertificateListing} from '../../sim/security/workload-files.js'
import {renderCerts} from '../certs.js'

export default class CertsRotate extends MeshCommand {
  static override description = `Rotate workload certificates now, as the mesh does at half their life: a new key and certificate for SERVICE (every identity without one), its files rewritten and its listeners presenting the new one from the next connection.`
  static override enableJsonFlag = true
  static override examples = ['<%= config.bin %> certs rotate', '<%= config.bin %> certs rotate cart']
  static override args = {service: Args.string({description: 'the service whose certificate to rotate (default: all)'})}

  async run(): Promise<CertificateListing[]> {
    const {args, flags} = await this.parse(CertsRotate)
    const certs = await this.connect(flags.file).rotateCerts(args.service)
    if (!this.jsonEnabled()) this.log(renderCerts(certs))
    return certs
  }
}
