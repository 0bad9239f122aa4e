// The mesh CA's certificate as a file users point tools at (`curl --cacert "$(mesh ca --path)"`),
// read without the daemon: the CA outlives every run of the mesh (mesh-ca.ts keeps it).
import {existsSync, readFileSync} from 'node:fs'
import {X509Certificate} from 'node:crypto'
import path from 'node:path'
import {MeshError} from '../errors.js'

/** `.mesh/ca/ca.crt` for the CA directory `dir`. */
export function caCertPath(dir: string): string {
  return path.join(dir, 'ca.crt')
}

export interface CaDescription {
  path: string
  pem: string
  subject: string
  notBefore: string
  notAfter: string
  /** SHA-256, as `openssl x509 -fingerprint -sha256` prints it. */
  fingerprint256: string
}

/** The CA in `dir`, or MESH_CA_NOT_FOUND when no mesh has run here yet. */
export function describeCa(dir: string): CaDescription {
  const file = caCertPath(dir)
  if (!existsSync(file)) {
    throw new MeshError('MESH_CA_NOT_FOUND', `there is no mesh CA in ${dir} yet.`, {hints: ['`mesh up` creates it on first start, and reuses it after.']})
  }
  const pem = readFileSync(file, 'utf8')
  const cert = new X509Certificate(pem)
  return {
    path: file,
    pem,
    subject: cert.subject.replace(/\n/g, ', '),
    notBefore: new Date(cert.validFrom).toISOString(),
    notAfter: new Date(cert.validTo).toISOString(),
    fingerprint256: cert.fingerprint256,
  }
}
