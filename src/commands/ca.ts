import {Flags} from '@oclif/core'
import {MeshCommand} from '../cli/mesh-command.js'
import {type CaDescription, describeCa} from '../sim/security/ca-file.js'

export default class Ca extends MeshCommand {
  static override description = `Print the mesh CA's certificate (PEM): the root every workload certificate and the HTTPS ingress's certificate chain to.

The CA is created in .mesh/ca/ on the first \`mesh up\` and reused after, so a tool told to trust it keeps trusting the mesh. Works whether or not the mesh is running.`
  static override enableJsonFlag = true
  static override examples = ['<%= config.bin %> ca', 'curl --cacert "$(<%= config.bin %> ca --path)" https://localhost:8443/', '<%= config.bin %> ca --json']
  static override flags = {
    path: Flags.boolean({description: "print the CA certificate's file path instead of its PEM"}),
  }

  async run(): Promise<CaDescription> {
    const {flags} = await this.parse(Ca)
    const ca = describeCa(this.meshPaths(flags.file).ca)
    if (!this.jsonEnabled()) this.log(flags.path ? ca.path : ca.pem.trimEnd())
    return ca
  }
}
