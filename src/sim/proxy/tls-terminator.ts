// TLS on a listener's port, as Istio's PeerAuthentication puts it on a workload's inbound
// side: the first byte a client sends tells a TLS ClientHello (0x16, a handshake record)
// from plaintext, so PERMISSIVE takes both on one port, STRICT only TLS, DISABLE only
// plaintext (Envoy's tls_inspector does the same sniff).
//
//   socket ──sniff──▶ 0x16 ──▶ tls.Server (never listening: handed connections) ──▶ serve(tlsSocket, {tls, peer})
//                   └─ other ──▶ STRICT: refused · PERMISSIVE/DISABLE: serve(socket, {tls: false})
//
// The handshake is node's tls.Server's, so a client certificate is verified by OpenSSL against
// the mesh CA (requestCert + rejectUnauthorized), and a client that stalls in the handshake is
// dropped by its handshakeTimeout. Certificates are swapped with setSecureContext: connections
// already open keep theirs, new ones get the new one, so a rotation drops nothing.
import {createHash} from 'node:crypto'
import type {Socket} from 'node:net'
import tls, {type TLSSocket} from 'node:tls'
import type {MtlsMode} from '../config/types.js'
import {peerOfCertificate} from '../security/peer-authentication.js'
import type {Peer} from './stack.js'

/** What a connection's client proved, kept on the socket the HTTP server reads requests from. */
export interface ConnectionSecurity {
  /** TLS was spoken (Istio's connection_security_policy: `mutual_tls` when `peer` is set too). */
  tls: boolean
  /** The client's identity from its verified mesh certificate (mTLS). */
  peer?: Peer
  /** SHA-256 (hex) of the client certificate's DER: x-forwarded-client-cert's Hash. */
  certHash?: string
}

/** A server certificate and key (PEM), and the CA client certificates must chain to (mTLS). */
export interface TlsMaterial {
  cert: string
  key: string
  ca?: string
}

const SECURITY = Symbol('meshsim.connectionSecurity')
const PLAINTEXT: ConnectionSecurity = Object.freeze({tls: false})

/** What the connection a request came on proved (node:http2's request socket passes symbol keys through). */
export function connectionSecurityOf(socket: object | null | undefined): ConnectionSecurity {
  return (socket as {[SECURITY]?: ConnectionSecurity} | null | undefined)?.[SECURITY] ?? PLAINTEXT
}

/** A TLS ClientHello starts with a handshake record. */
const TLS_HANDSHAKE_RECORD = 0x16

export interface TlsTerminatorOptions {
  /** Read per connection: `mesh apply` may change it while the listener is open. */
  mode(): MtlsMode
  /** Ask for a client certificate and accept only one the CA in the material signed (mTLS). */
  mutual: boolean
  /** ALPN protocols offered, most preferred first (`h2`, `http/1.1` on HTTP listeners). */
  alpn?: string[]
  /** A client that has not finished its handshake (or sent its first byte) by then is dropped. */
  handshakeTimeoutMs: number
  /**
   * PERMISSIVE only: a client silent this long is taken as plaintext (a server-first protocol
   * such as MySQL's waits for the server to speak). Unset: it is dropped at handshakeTimeoutMs.
   */
  silenceIsPlaintextMs?: number
  /** A plaintext client under STRICT, once it sent something (HTTP: a reply saying why). Default: a reset. */
  refusePlaintext?(socket: Socket): void
}

export class TlsTerminator {
  private readonly server: tls.Server

  constructor(
    private readonly opts: TlsTerminatorOptions,
    material: TlsMaterial,
    /** Where every accepted connection goes, TLS or plaintext. */
    private readonly serve: (socket: Socket, security: ConnectionSecurity) => void,
  ) {
    this.server = tls.createServer({
      ...material,
      requestCert: opts.mutual,
      rejectUnauthorized: opts.mutual,
      ALPNProtocols: opts.alpn,
      handshakeTimeout: opts.handshakeTimeoutMs,
    })
    // Reached only once the handshake is done and, under mTLS, the client's chain verified.
    this.server.on('secureConnection', (socket: TLSSocket) => this.secured(socket))
    // A failed or timed-out handshake, garbage after the first byte: nothing was served.
    this.server.on('tlsClientError', (_error, socket: TLSSocket) => socket.destroy())
  }

  /** A new certificate (rotation): connections from now on present it; those open keep theirs. */
  setMaterial(material: TlsMaterial): void {
    this.server.setSecureContext(material)
  }

  accept(socket: Socket): void {
    socket.on('error', () => undefined)
    const mode = this.opts.mode()
    if (mode === 'DISABLE') return this.serve(socket, PLAINTEXT)
    const silence = mode === 'PERMISSIVE' ? this.opts.silenceIsPlaintextMs : undefined
    socket.setTimeout(silence ?? this.opts.handshakeTimeoutMs, () => {
      if (silence === undefined) return void socket.destroy()
      stop()
      this.serve(socket, PLAINTEXT)
    })
    const stop = () => {
      socket.off('data', onData)
      socket.pause()
      socket.setTimeout(0)
    }
    const onData = (chunk: Buffer) => {
      stop()
      socket.unshift(chunk)
      if (chunk[0] === TLS_HANDSHAKE_RECORD) return void this.server.emit('connection', socket)
      if (mode === 'PERMISSIVE') return this.serve(socket, PLAINTEXT)
      if (this.opts.refusePlaintext) this.opts.refusePlaintext(socket)
      else socket.resetAndDestroy()
    }
    socket.on('data', onData)
  }

  private secured(socket: TLSSocket): void {
    socket.on('error', () => undefined)
    let security: ConnectionSecurity = {tls: true}
    if (this.opts.mutual) {
      const cert = socket.getPeerX509Certificate()
      // Verified by OpenSSL before this point; a certificate with no SPIFFE ID names no caller.
      const peer = cert && peerOfCertificate(cert)
      if (!cert || !peer) return void socket.destroy()
      security = {tls: true, peer, certHash: createHash('sha256').update(cert.raw).digest('hex')}
    }
    ;(socket as {[SECURITY]?: ConnectionSecurity})[SECURITY] = security
    this.serve(socket, security)
  }
}
