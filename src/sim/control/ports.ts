// Port allocation for instances. Sidecar listeners bind port 0 themselves; an
// instance's own port must be chosen before its process starts, so we ask the OS
// for a free one and hand it over (a small race the health check would reveal).
import net from 'node:net'
import {MeshError} from '../errors.js'

export async function freePort(): Promise<number> {
  const server = net.createServer()
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => resolve())
  })
  const {port} = server.address() as net.AddressInfo
  await new Promise((resolve) => server.close(resolve))
  return port
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
