// Connections a simulated service opens to its outbound sidecar listeners before it
// listens (so before its health check passes), for its first calls to find them open.
// undici connects only when a request is queued (nodejs/undici#317 asks for a
// pre-connect; there is none), and a request to warm a connection would go through the
// mesh as a call. So the Agent's connector takes an opened socket from here before it
// dials a new one: a warmed connection is an ordinary keep-alive connection from then on.
import type {Socket} from 'node:net'
import {buildConnector} from 'undici'

/**
 * How long a warmed connection waits for its first call. The mesh's listeners close one
 * that sends nothing for 10 s (HEADERS_TIMEOUT_MS in proxy/data-plane.ts); closed here
 * first, no call can be written into a socket the other end is closing.
 */
export const WARM_IDLE_MS = 8_000

export class WarmConnections {
  private readonly idle = new Map<string, Socket[]>()
  /** undici's own connector, with the options an Agent gives it by default. */
  private readonly dial = buildConnector({})
  private closed = false

  constructor(private readonly idleMs = WARM_IDLE_MS) {}

  /** The Agent's `connect` option. */
  readonly connect: buildConnector.connector = (opts, callback) => {
    const list = this.idle.get(keyOf(opts.hostname, opts.port))
    for (let socket = list?.pop(); socket; socket = list?.pop()) {
      if (socket.destroyed || !socket.writable) continue
      socket.removeListener('close', destroySelf)
      socket.removeListener('error', destroySelf)
      socket.removeListener('timeout', destroySelf)
      socket.setTimeout(0)
      // Never within the call: undici dials from inside its resume loop, which ignores a
      // resume made from there, and the request would wait for the next event forever.
      return void process.nextTick(callback, null, socket)
    }
    return this.dial(opts, callback)
  }

  /**
   * Opens `perOrigin` connections to each base URL. Resolves once all are open or have
   * failed, or after `withinMs`: never rejects, as a dependency's sidecar that is not
   * listening yet must not stop this service from starting (its calls dial as usual).
   */
  open(urls: readonly string[], perOrigin: number, withinMs: number): Promise<void> {
    const origins = [...new Set(urls.map((url) => new URL(url)).filter((u) => u.protocol === 'http:').map((u) => u.host))]
    const dials = origins.flatMap((host) => Array.from({length: perOrigin}, () => this.openOne(new URL(`http://${host}`))))
    if (dials.length === 0) return Promise.resolve()
    let timer: ReturnType<typeof setTimeout> | undefined
    const deadline = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, withinMs)
    })
    return Promise.race([Promise.all(dials).then(() => undefined), deadline]).finally(() => clearTimeout(timer))
  }

  /** Idle warmed connections now. */
  get size(): number {
    let n = 0
    for (const list of this.idle.values()) n += list.length
    return n
  }

  /** Closes the warmed connections nobody took. */
  close(): void {
    this.closed = true
    for (const list of this.idle.values()) for (const socket of list.splice(0)) socket.destroy()
  }

  private openOne(url: URL): Promise<void> {
    return new Promise((resolve) => {
      const port = url.port || '80'
      this.dial({hostname: url.hostname, host: url.host, protocol: 'http:', port, servername: undefined, localAddress: null, httpSocket: undefined}, (error, socket) => {
        resolve()
        if (error || !socket) return
        if (this.closed) return void socket.destroy()
        const key = keyOf(url.hostname, port)
        let list = this.idle.get(key)
        if (!list) this.idle.set(key, (list = []))
        list.push(socket as Socket)
        // The listener closing it (a drain, mesh down) before any call took it.
        socket.once('close', destroySelf).once('error', destroySelf).once('timeout', destroySelf)
        socket.setTimeout(this.idleMs)
      })
    })
  }
}

function destroySelf(this: Socket): void {
  this.destroy()
}

function keyOf(hostname: string, port: string | number): string {
  return `${hostname}:${port}`
}
