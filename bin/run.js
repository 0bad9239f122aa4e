#!/usr/bin/env node
// `mesh`. Installed from a clone (npm install -g .), this runs the clone's build: when it is
// not built, or its dependencies are not installed, say how to fix that rather than print
// a module-resolution stack trace.
import {existsSync} from 'node:fs'
import {fileURLToPath} from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const notReady = (what) => {
  process.stderr.write(`meshsim at ${root} is not ready: ${what}.\n  Run \`npm install\` there (it installs the dependencies and builds dist/).\n`)
  process.exit(1)
}
if (!existsSync(new URL('../dist/commands', import.meta.url))) notReady('dist/ is not built')
let oclif
try {
  oclif = await import('@oclif/core')
} catch (error) {
  if (error?.code === 'ERR_MODULE_NOT_FOUND') notReady('its dependencies are not installed')
  throw error
}
await oclif.execute({dir: import.meta.url})
