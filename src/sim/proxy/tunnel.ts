// An Upgrade (WebSocket, h2c) through the mesh. The request goes down the destination's
// stack like any other — rate limit, faults, routing, balancing, retries of a refused
// connect, outlier detection, both spans — and once the instance answers 101 its socket
// and the client's are joined byte for byte until either side closes, as Envoy and
// Linkerd tunnel upgrades. The spans and metrics cover the handshake: the session
// that follows is not a request. A session is no request under way either: draining
// an instance does not wait for it (the instance's SIGTERM ends it, and clients
// reconnect through the mesh); `mesh down` closes what is left.
import type {Duplex} from 'node:stream'
import type {HeaderPairs} from './headers.js'

/** Writes the 101 the instance sent (its end-to-end headers, then the upgrade's own), and joins the sockets. */
export function openTunnel(client: Duplex, head: Buffer, upstream: Duplex, protocol: string, headers: HeaderPairs): void {
  let out = 'HTTP/1.1 101 Switching Protocols\r\n'
  for (let i = 0; i < headers.length; i += 2) out += `${headers[i]}: ${headers[i + 1]}\r\n`
  out += `connection: Upgrade\r\nupgrade: ${protocol}\r\n\r\n`
  client.write(out, 'latin1')
  // Bytes the client sent after its request head (a first frame) go first.
  if (head.length > 0) upstream.write(head)
  const close = () => {
    client.destroy()
    upstream.destroy()
  }
  for (const socket of [client, upstream]) {
    socket.on('error', close)
    socket.on('close', close)
  }
  client.pipe(upstream)
  upstream.pipe(client)
}
