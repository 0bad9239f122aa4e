import {MeshCommand} from '../cli/mesh-command.js'
import {meshJsonSchema} from '../sim/config/json-schema.js'

export default class Schema extends MeshCommand {
  static override description =
    "Print mesh.yaml's JSON Schema, for an editor's completion and inline errors (yaml-language-server: VS Code, JetBrains, Neovim). " +
    'The package ships the same file as schema/mesh.schema.json; `mesh validate` checks more (references between services, p99 >= p50).'
  static override examples = ['<%= config.bin %> schema > mesh.schema.json']
  // Reads no mesh.yaml: no --file.
  static override baseFlags = {}

  async run(): Promise<void> {
    await this.parse(Schema)
    this.log(JSON.stringify(meshJsonSchema(), null, 2))
  }
}
