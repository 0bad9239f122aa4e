// Entry point of a detached daemon (`mesh up -d`). It reports progress to the CLI
// that forked it over IPC, then cuts the cord and lives on its own.
import {loadConfig} from '../config/load-config.js'
import {MeshError} from '../errors.js'
import {MeshDaemon} from './daemon.js'

export type DaemonMessage =
  | {type: 'event'; event: import('./daemon.js').DaemonEvent}
  | {type: 'ready'; status: import('./status.js').MeshStatus}
  | {type: 'failed'; error: {code: string; message: string; hints: string[]}}

/** Resolves once the message is handed to the channel (process.exit right after send() can drop it). */
const send = (message: DaemonMessage) =>
  new Promise<void>((resolve) => {
    if (!process.connected || !process.send) return resolve()
    process.send(message, () => resolve())
  })

const configFile = process.argv[2]
const watch = process.argv.includes('--watch')
const listArg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3).split(',')
const only = listArg('only')
const profiles = listArg('profiles')
let daemon: MeshDaemon | undefined

// A dev tool's daemon should outlive a bug in one request path; the log says what happened.
process.on('uncaughtException', (error) => console.error(`[daemon] uncaught: ${error.stack ?? error}`))
process.on('unhandledRejection', (error) => console.error(`[daemon] unhandled rejection: ${(error as Error)?.stack ?? error}`))

try {
  const config = await loadConfig(configFile)
  daemon = new MeshDaemon(config, {watch, only, profiles})
  const d = daemon
  const shutdown = () => void d.stop().then(() => process.exit(0))
  process.on('SIGTERM', shutdown)
  process.on('SIGINT', shutdown)
  process.on('SIGHUP', () => undefined)
  d.on('stopped', () => process.exit(0))
  d.on('event', (event) => {
    console.log(`[daemon] ${JSON.stringify(event)}`)
    void send({type: 'event', event})
  })
  await d.start()
  console.log(`[daemon] mesh ${config.name} running; control API ${d.status().controlUrl}`)
  await send({type: 'ready', status: d.status()})
  if (process.connected) process.disconnect()
} catch (error) {
  const e = error as MeshError
  console.error(`[daemon] failed to start: ${e.stack ?? e}`)
  // Stop what did start before saying so: the CLI returns when told, and a mesh still
  // tearing down would hold its state file and ports against the user's next `mesh up`.
  await daemon?.stop().catch(() => undefined)
  await send({type: 'failed', error: {code: e.code ?? 'MESH_STARTUP_FAILED', message: e.message, hints: e.hints ?? []}})
  process.exit(1)
}
