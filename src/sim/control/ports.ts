// Port allocation for instances. Sidecar listeners bind port 0 themselves; an
// instance's own port must be chosen before its process starts and handed over.
// It is taken from BELOW the kernel's ephemeral range: a port from listen(0) is
// ephemeral, and between our close and the child's bind any outgoing connection
// (the mesh makes thousands) may take it as its local port — EADDRINUSE, crash loop.
import {execFileSync} from 'node:child_process'
import {readFileSync} from 'node:fs'
import net from 'node:net'
import {MeshError} from '../errors.js'

// Linux's default; macOS and the BSDs start theirs at 49152 (IANA's dynamic range).
const FALLBACK_EPHEMERAL_LOW = 32768
/** Lowest port handed to instances; below it live well-known and registered services. */
const INSTANCE_PORT_LOW = 10000

/** The first port of the kernel's ephemeral range: /proc on Linux, sysctl on macOS and the BSDs. */
function readEphemeralLow(): number | undefined {
  try {
    return Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0])
  } catch {
    // Not Linux.
  }
  try {
    return Number(execFileSync('sysctl', ['-n', 'net.inet.ip.portrange.first'], {encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore']}).trim())
  } catch {
    return undefined
  }
}

let ephemeral: number | undefined
function ephemeralLow(): number {
  if (ephemeral === undefined) {
    const low = readEphemeralLow()
    ephemeral = low !== undefined && Number.isInteger(low) && low > INSTANCE_PORT_LOW + 1000 ? low : FALLBACK_EPHEMERAL_LOW
  }
  return ephemeral
}

function canBind(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer()
    server.once('error', () => resolve(false))
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)))
  })
}

// Where each range's next search starts: spread by pid, so processes side by side rarely try the same ports.
const cursors = new Map<number, number>()

/**
 * A free port for an instance, outside the ephemeral range. `range` picks another
 * band below it (tests take ingress ports from one the mesh never uses for instances).
 */
export async function freePort(range: {low: number; high: number} = {low: INSTANCE_PORT_LOW, high: ephemeralLow() - 1}): Promise<number> {
  const {low, high} = range
  const span = high - low + 1
  let cursor = cursors.get(low) ?? low + ((process.pid * 7919) % span)
  for (let tries = 0; tries < 200; tries++) {
    cursor = low + ((cursor - low + 1) % span)
    if (await canBind(cursor)) {
      cursors.set(low, cursor)
      return cursor
    }
  }
  throw new MeshError('MESH_NO_FREE_PORT', `no free port found between ${low} and ${high} after 200 tries.`)
}

/** Fails with the port and who wanted it, before anything starts. */
export async function assertPortFree(port: number, wantedBy: string): Promise<void> {
  const server = net.createServer()
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(port, '127.0.0.1', () => resolve())
    })
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    throw new MeshError(
      'MESH_PORT_IN_USE',
      code === 'EADDRINUSE' ? `port ${port} is already in use; ${wantedBy} wants it.` : `cannot bind port ${port} for ${wantedBy}: ${code}`,
      {cause: error, hints: [`Stop whatever listens on ${port} (\`lsof -i :${port}\`), or change the port in mesh.yaml.`]},
    )
  } finally {
    await new Promise((resolve) => server.close(resolve))
  }
}
