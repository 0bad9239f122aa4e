// `ingress.tls`: the HTTPS ingress, on a port of its own beside the plain one. Its certificate is
// the user's (cert and key files, checked here at `mesh validate` so a missing file, one that is
// not PEM or a key that is not the certificate's is reported at its field), else one for
// localhost / 127.0.0.1 / ::1 the mesh CA issues and rotates.
//
//   ingress: {port: 8080, tls: {port: 8443, redirect: true}}   8080 answers 308 → https://…:8443
import {X509Certificate} from 'node:crypto'
import {dirname, resolve} from 'node:path'
import {bool, int, obj, opt, refine, req, str} from './checker.js'
import {certificateBlocks, keyMatches, readPemFile} from './pem-files.js'
import type {IngressTlsConfig} from './types.js'

const file = str({nonEmpty: true, expected: 'a path to a PEM file (relative to mesh.yaml)'})

export const ingressTls = refine(
  obj({port: req(int({min: 0, max: 65535})), cert: opt(file), key: opt(file), redirect: opt(bool())}),
  (raw, at): IngressTlsConfig | undefined => {
    const out: IngressTlsConfig = {port: raw.port, ...(raw.redirect ? {redirect: true} : {})}
    if (raw.cert === undefined && raw.key === undefined) return out
    if (raw.cert === undefined || raw.key === undefined) return at.error(`ingress.tls needs both cert and key to serve a certificate of your own (or neither: the mesh CA issues one)`)
    const base = dirname(at.report.file)
    const certFile = resolve(base, raw.cert)
    const keyFile = resolve(base, raw.key)
    const certPem = readPemFile(at.child('cert')!, certFile, 'certificate')
    const keyPem = readPemFile(at.child('key')!, keyFile, 'private key')
    if (certPem === undefined || keyPem === undefined) return undefined
    const cert = new X509Certificate(certificateBlocks(certPem)[0])
    if (!keyMatches(certPem, keyPem)) return at.child('key')!.error(`${keyFile} is not the private key of the certificate in ${certFile}`)
    // Served all the same (a rehearsal of an expired certificate is a fair thing to want), but said.
    if (new Date(cert.validTo).getTime() < Date.now()) at.child('cert')!.warn(`the certificate in ${certFile} expired on ${new Date(cert.validTo).toISOString()}: clients will refuse it`)
    return {...out, certFile, keyFile}
  },
)
