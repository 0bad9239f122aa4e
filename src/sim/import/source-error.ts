// A file import reads (a compose file, Istio manifests) with errors: shown as mesh.yaml's are
// (MESH_CONFIG_INVALID, exit 2, each issue at its line), with a hint about that file.
import {ConfigError} from '../config/config-error.js'
import type {ConfigIssue} from '../config/types.js'

export class SourceError extends ConfigError {
  constructor(issues: ConfigIssue[], hint: string) {
    super(issues)
    // ConfigError's hint names `mesh validate`, which does not read these files.
    this.hints.splice(0, this.hints.length, hint)
  }
}
