// Talking to a listener below any client library: raw HTTP/1.1 bytes where the bytes
// matter (malformed requests, duplicate headers), and bare HTTP/2 streams.
import type http2 from 'node:http2'
import net from 'node:net'

/** What comes back for `text` until the server closes, or nothing more arrives for `idleMs`. */
export function raw(port: number, text: string, idleMs = 5_000): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1')
    let data = ''
    socket.setTimeout(idleMs, () => socket.destroy())
    socket.on('data', (d) => (data += d.toString('latin1')))
    socket.on('close', () => resolve(data))
    socket.on('error', () => resolve(data))
    socket.write(text)
  })
}

/** The status of a raw HTTP/1.1 response (0 if there is none). */
export const statusOf = (response: string) => Number(/^HTTP\/1\.1 (\d{3})/.exec(response)?.[1] ?? 0)

/** The status an HTTP/2 request on `session` gets, with `extra` headers `x-0: v` … `x-<extra-1>: v`. */
export function h2Status(session: http2.ClientHttp2Session, path: string, extra = 0): Promise<number> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = {':path': path}
    for (let i = 0; i < extra; i++) headers[`x-${i}`] = 'v'
    const stream = session.request(headers)
    stream.on('response', (h) => resolve(Number(h[':status'])))
    stream.on('error', reject)
    stream.resume()
  })
}
