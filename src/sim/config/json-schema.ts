// mesh.yaml as a JSON Schema, for editors (VS Code, JetBrains, Neovim through
// yaml-language-server): completion and inline errors as you type. It is built from the
// checkers `mesh validate` runs (each combinator carries its own JSON Schema), so the two
// cannot drift; the checker still says more (cross-references, p99 >= p50, did-you-mean).
import {entries} from './checker.js'
import {topLevel} from './mesh-schema.js'

/** Where the package ships the schema (npm run build writes it), from the package's root. */
export const SCHEMA_FILE = 'schema/mesh.schema.json'

/**
 * The first line of every template's mesh.yaml: yaml-language-server reads the schema from
 * this path, relative to the file, which holds where meshsim is a devDependency of the
 * project; `mesh init` points it at the running package's copy where it does not.
 */
export const SCHEMA_MODELINE = `# yaml-language-server: $schema=node_modules/meshsim/${SCHEMA_FILE}`

export function meshJsonSchema(): Record<string, unknown> {
  const {name, ingress, faults, telemetry, security, functions, simulation, serviceName, service} = topLevel
  const properties: Record<string, unknown> = {
    name: name.json,
    ingress: ingress.json,
    faults: faults.json,
    telemetry: telemetry.json,
    security: security.json,
    functions: {description: "AWS Lambda's account-wide concurrency limit over the services with scaling:", ...(functions.json as object)},
    simulation: {description: 'how the simulate: instances are run: hosts, the number of shared processes they run in', ...(simulation.json as object)},
    // checkMesh walks the services itself (keeping the valid ones when another is broken); the schema is entries'.
    services: {description: 'the services, by name', ...(entries(service, {key: serviceName, min: 1}).json as object)},
  }
  return {
    $schema: 'http://json-schema.org/draft-07/schema#',
    title: 'meshsim mesh.yaml',
    description: 'A local service mesh: its services, their policies, faults and telemetry. `mesh validate` checks the rest.',
    type: 'object',
    required: ['name', 'services'],
    properties: Object.fromEntries(topLevel.keys.map((key) => [key, properties[key]])),
    additionalProperties: false,
  }
}
