// The mesh's edge: the plain ingress on `ingress.port` and, with `ingress.tls`, the HTTPS
// ingress on a port of its own (HTTP/2 or HTTP/1.1 by ALPN). With `ingress.tls.redirect` the
// plain one only sends clients to the HTTPS one (308, which keeps the method and body).
import {readFileSync} from 'node:fs'
import type {IngressConfig} from '../config/types.js'
import {MeshError} from '../errors.js'
import type {DataPlane} from './data-plane.js'
import type {TlsMaterial} from './tls-terminator.js'

export interface IngressUrls {
  url: string
  /** The HTTPS ingress, when `ingress.tls` is set. */
  httpsUrl?: string
}

export async function listenIngress(dataPlane: DataPlane, ingress: IngressConfig): Promise<IngressUrls> {
  const base = {kind: 'ingress' as const, routes: ingress.routes, preserveRequestId: ingress.preserveRequestId}
  let httpsPort: number | undefined
  if (ingress.tls) {
    const material = ingress.tls.certFile && ingress.tls.keyFile ? ownCertificate(ingress.tls.certFile, ingress.tls.keyFile) : undefined
    const l = await dataPlane.listen({...base, https: {material}}, ingress.tls.port, 'the HTTPS ingress (ingress.tls.port)')
    httpsPort = l.port
  }
  const redirect = ingress.tls?.redirect ? {redirectToHttpsPort: httpsPort} : {}
  const l = await dataPlane.listen({...base, ...redirect}, ingress.port, 'the ingress (ingress.port)')
  return {url: `http://127.0.0.1:${l.port}`, ...(httpsPort !== undefined ? {httpsUrl: `https://localhost:${httpsPort}`} : {})}
}

/** The user's certificate and key (checked at `mesh validate`; read again here, as they are now). */
function ownCertificate(certFile: string, keyFile: string): TlsMaterial {
  const read = (file: string, field: string) => {
    try {
      return readFileSync(file, 'utf8')
    } catch (error) {
      throw new MeshError('MESH_CONFIG_INVALID', `cannot read ingress.tls.${field} ${file}: ${(error as Error).message}`, {hints: ['Fix the path or its permissions, then `mesh validate`.']})
    }
  }
  return {cert: read(certFile, 'cert'), key: read(keyFile, 'key')}
}
