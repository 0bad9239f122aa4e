// `policy.tls`: the TLS the mesh originates to a service's instances, as Istio's
// DestinationRule `trafficPolicy.tls` says it. The certificate files are read here, at
// `mesh validate`, so a missing file, one that is not PEM or a key that is not the
// certificate's is reported at its field rather than found by the first request.
//
//   ISTIO_MUTUAL  the caller's mesh certificate; the callee must prove its SPIFFE ID (mesh CA)
//   MUTUAL        the user's client certificate and key; the server checked against caCertificates
//   SIMPLE        server-authenticated TLS only (an https `address:` service)
//   DISABLE       plaintext (the default)
import {dirname, resolve} from 'node:path'
import {type At, array, checker, enumOf, obj, opt, req, str} from './checker.js'
import {keyMatches, readPemFile} from './pem-files.js'
import type {TlsMode, TlsPolicy} from './types.js'

export const TLS_MODES = ['ISTIO_MUTUAL', 'MUTUAL', 'SIMPLE', 'DISABLE'] as const satisfies readonly TlsMode[]

const FILE_KEYS = ['caCertificates', 'clientCertificate', 'privateKey'] as const

const file = str({nonEmpty: true, expected: 'a path to a PEM file (relative to mesh.yaml)'})

const shape = obj({
  mode: req(enumOf(TLS_MODES)),
  sni: opt(str({nonEmpty: true, expected: 'a server name like api.example.com'})),
  caCertificates: opt(file),
  clientCertificate: opt(file),
  privateKey: opt(file),
  subjectAltNames: opt(array(str({nonEmpty: true}), {min: 1})),
})

export const tlsPolicy = checker<TlsPolicy>(
  shape.expected,
  (at) => {
    const raw = shape(at)
    if (!raw) return undefined
    let ok = true
    const wrong = (key: string, message: string) => {
      at.child(key)!.errorAtKey(message)
      ok = false
    }
    // Istio's rules: the mesh brings its own certificates for ISTIO_MUTUAL; only MUTUAL presents the user's.
    if (raw.mode === 'ISTIO_MUTUAL' || raw.mode === 'DISABLE') {
      for (const key of FILE_KEYS) if (raw[key] !== undefined) wrong(key, `${raw.mode} takes no ${key}: ${raw.mode === 'DISABLE' ? 'nothing is encrypted' : 'the mesh presents its own certificates and trusts its CA'}`)
    }
    if (raw.mode === 'SIMPLE') {
      for (const key of ['clientCertificate', 'privateKey'] as const) if (raw[key] !== undefined) wrong(key, `SIMPLE presents no client certificate; use mode: MUTUAL to present ${key}`)
    }
    if (raw.mode === 'MUTUAL') {
      for (const key of ['clientCertificate', 'privateKey'] as const) {
        if (raw[key] !== undefined) continue
        at.error(`mode: MUTUAL needs ${key} (and the other of clientCertificate, privateKey)`)
        ok = false
      }
    }
    if (!ok) return undefined
    const base = dirname(at.report.file)
    const out: TlsPolicy = {mode: raw.mode}
    if (raw.sni !== undefined) out.sni = raw.sni
    if (raw.subjectAltNames !== undefined) out.subjectAltNames = raw.subjectAltNames
    const pems: Partial<Record<(typeof FILE_KEYS)[number], string>> = {}
    for (const key of FILE_KEYS) {
      if (raw[key] === undefined) continue
      const path = resolve(base, raw[key])
      const pem = readPemFile(at.child(key)!, path, key === 'privateKey' ? 'private key' : 'certificate')
      if (pem === undefined) ok = false
      else {
        out[key] = path
        pems[key] = pem
      }
    }
    if (pems.clientCertificate !== undefined && pems.privateKey !== undefined && !keyMatches(pems.clientCertificate, pems.privateKey)) {
      at.child('privateKey')!.error(`${out.privateKey} is not the private key of clientCertificate ${out.clientCertificate}`)
      ok = false
    }
    return ok ? out : undefined
  },
  shape.json,
)

/** Where the mesh cannot originate TLS: a simulated instance serves plaintext HTTP only. */
export function tlsFits(policy: TlsPolicy | undefined, simulated: boolean, at: At): boolean {
  if (!policy || policy.mode === 'DISABLE' || !simulated) return true
  at.child('policy')?.child('tls')?.errorAtKey(`a simulated service serves plaintext HTTP; policy.tls mode ${policy.mode} needs command: or address: (an instance that serves TLS)`)
  return false
}
