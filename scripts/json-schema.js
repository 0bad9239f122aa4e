// Writes schema/mesh.schema.json after each build, from the checkers `mesh validate` runs
// (dist/sim/config/json-schema.js): the file the package ships for editors. Generated,
// never committed, as oclif.manifest.json.
import {mkdirSync, writeFileSync} from 'node:fs'
import path from 'node:path'
import {fileURLToPath} from 'node:url'
import {meshJsonSchema, SCHEMA_FILE} from '../dist/sim/config/json-schema.js'

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)))
const file = path.join(root, SCHEMA_FILE)
mkdirSync(path.dirname(file), {recursive: true})
writeFileSync(file, `${JSON.stringify(meshJsonSchema(), null, 2)}\n`)
