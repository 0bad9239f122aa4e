// A service's certificate, key and CA bundle as files its instances read (MESH_TLS_CERT,
// MESH_TLS_KEY, MESH_TLS_CA), so an app can speak mTLS itself, rewritten on every rotation.
//
// A rotation replaces all three at once, as Kubernetes updates a mounted Secret: each
// generation is written into a directory of its own, then one rename points `..data` at it,
// and the files the variables name are links through `..data`:
//
//   .mesh/certs/cart/            0700
//     ..3f9a…/cert.pem key.pem ca.pem      one generation (key 0600), the previous kept until the next
//     ..data -> ..3f9a…                    swapped by rename(2): atomic
//     cert.pem -> ..data/cert.pem          MESH_TLS_CERT (and key.pem, ca.pem)
import {chmodSync, mkdirSync, readdirSync, readlinkSync, renameSync, rmSync, symlinkSync, writeFileSync} from 'node:fs'
import path from 'node:path'
import type {CertificateInfo, WorkloadCertificate, WorkloadIdentities} from './workload-identity.js'

export interface TlsFilePaths {
  cert: string
  key: string
  ca: string
}

/** What `mesh certs` lists: the presented certificate and, for a service whose instances got them, its files. */
export interface CertificateListing extends CertificateInfo {
  files?: TlsFilePaths
}

const FILES = {cert: 'cert.pem', key: 'key.pem', ca: 'ca.pem'} as const
const DATA = '..data'

export class WorkloadFiles {
  /** Services whose instances were given files: only theirs are written and rewritten. */
  private readonly written = new Map<string, string>()
  private readonly unsubscribe: () => void

  constructor(
    /** `.mesh/certs` */
    private readonly dir: string,
    private readonly identities: WorkloadIdentities,
  ) {
    // A run that was killed left its keys: they belong to no certificate of this run.
    rmSync(dir, {recursive: true, force: true})
    this.unsubscribe = identities.onRotate((service) => {
      const cert = identities.current(service)
      if (cert && this.written.has(service)) this.write(cert)
    })
  }

  /** The files of `service`, written first if they are not yet: call before its instance starts. */
  async ensure(service: string): Promise<TlsFilePaths> {
    const cert = await this.identities.certificate(service)
    if (this.written.get(service) !== cert.serial) this.write(cert)
    return this.paths(service)
  }

  paths(service: string): TlsFilePaths {
    const base = path.join(this.dir, service)
    return {cert: path.join(base, FILES.cert), key: path.join(base, FILES.key), ca: path.join(base, FILES.ca)}
  }

  /** Each identity's presented certificate, with the files of those that have them. */
  async list(): Promise<CertificateListing[]> {
    return (await this.identities.list()).map((c) => (this.written.has(c.service) ? {...c, files: this.paths(c.service)} : c))
  }

  /** At `mesh down`: the keys go with the mesh (the CA stays in .mesh/ca). */
  close(): void {
    this.unsubscribe()
    rmSync(this.dir, {recursive: true, force: true})
  }

  private write(cert: WorkloadCertificate): void {
    const base = path.join(this.dir, cert.service)
    mkdirSync(this.dir, {recursive: true, mode: 0o700})
    mkdirSync(base, {recursive: true, mode: 0o700})
    chmodSync(base, 0o700)
    const generation = `..${cert.serial}`
    const genDir = path.join(base, generation)
    rmSync(genDir, {recursive: true, force: true})
    mkdirSync(genDir, {mode: 0o700})
    writeFileSync(path.join(genDir, FILES.cert), cert.certPem, {mode: 0o644})
    writeFileSync(path.join(genDir, FILES.key), cert.keyPem, {mode: 0o600})
    writeFileSync(path.join(genDir, FILES.ca), this.identities.ca.certPem, {mode: 0o644})
    const previous = readLink(path.join(base, DATA))
    const tmp = path.join(base, `${DATA}.tmp`)
    rmSync(tmp, {force: true})
    symlinkSync(generation, tmp)
    renameSync(tmp, path.join(base, DATA))
    for (const name of Object.values(FILES)) {
      const link = path.join(base, name)
      if (readLink(link) !== path.join(DATA, name)) {
        rmSync(link, {force: true})
        symlinkSync(path.join(DATA, name), link)
      }
    }
    // The previous generation stays: an app that resolved `..data` a moment ago still reads a whole pair.
    for (const entry of readdirSync(base)) {
      if (entry.startsWith('..') && entry !== generation && entry !== previous && entry !== DATA) {
        rmSync(path.join(base, entry), {recursive: true, force: true})
      }
    }
    this.written.set(cert.service, cert.serial)
  }
}

function readLink(file: string): string | undefined {
  try {
    return readlinkSync(file)
  } catch {
    return undefined
  }
}
