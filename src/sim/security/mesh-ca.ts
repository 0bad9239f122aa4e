// The mesh's certificate authority: one self-signed ECDSA P-256 root kept in `.mesh/ca/`
// (reused across `mesh up`s, so a user's `curl --cacert` keeps working), and short-lived
// leaf certificates signed by it: a workload's with its SPIFFE ID as URI SAN (as istiod's
// CA issues them), the HTTPS ingress's with DNS/IP SANs for localhost.
//
// Certificates are built with @peculiar/x509 over node's webcrypto; no ASN.1 by hand.
import 'reflect-metadata'
import * as x509 from '@peculiar/x509'
import {createPrivateKey, randomBytes, webcrypto, X509Certificate} from 'node:crypto'
import {chmodSync, existsSync, mkdirSync, readFileSync} from 'node:fs'
import {join} from 'node:path'
import {writeFileAtomically} from '../atomic-file.js'
import {MeshError} from '../errors.js'
import {caCertPath} from './ca-file.js'

x509.cryptoProvider.set(webcrypto as unknown as Crypto)

const EC: EcKeyGenParams = {name: 'ECDSA', namedCurve: 'P-256'}
const SIGNING: EcdsaParams = {name: 'ECDSA', hash: 'SHA-256'}
/** Istio's self-signed root lives ten years; a developer's machine needs no less. */
const ROOT_TTL_MS = 10 * 365 * 24 * 3600_000
/** Clocks of processes on one machine agree, but a leaf valid from "now" fails a peer a few ms behind. */
const BACKDATE_MS = 60_000

export interface IssuedCertificate {
  certPem: string
  keyPem: string
  /** Hex, as `openssl x509 -serial` prints it. */
  serial: string
  notBefore: Date
  notAfter: Date
  /** The URI SAN (a SPIFFE ID) when the leaf is a workload's. */
  uri?: string
}

export interface LeafRequest {
  /** A SPIFFE ID for a workload certificate. */
  uri?: string
  dnsNames?: string[]
  ipAddresses?: string[]
  /** Lifetime from `now`. */
  ttlMs: number
  /** The issue time (the mesh's clock); a certificate fault backdates it to make an expired one. */
  now: Date
  /** Common name for humans reading `openssl x509 -text`. */
  commonName: string
}

export class MeshCA {
  private constructor(
    readonly certPem: string,
    private readonly key: CryptoKey,
    private readonly name: string,
    readonly notAfter: Date,
  ) {}

  /**
   * The CA in `dir` (0700; key 0600), or a new one written there when there is none or the one
   * there has expired. A CA whose files are unreadable or do not belong together is an error
   * naming the file: replacing it silently would break every certificate users already trust.
   */
  static async loadOrCreate(dir: string, trustDomain: string, now = new Date()): Promise<MeshCA> {
    const certFile = caCertPath(dir)
    const keyFile = join(dir, 'ca.key')
    if (existsSync(certFile) && existsSync(keyFile)) {
      const ca = await MeshCA.load(certFile, keyFile)
      if (ca.notAfter.getTime() > now.getTime() + 24 * 3600_000) return ca
    }
    const ca = await MeshCA.create(trustDomain, now)
    mkdirSync(dir, {recursive: true, mode: 0o700})
    chmodSync(dir, 0o700)
    writeFileAtomically(keyFile, await ca.keyPem(), 0o600)
    writeFileAtomically(certFile, ca.certPem, 0o644)
    return ca
  }

  /** A fresh root, kept in memory only (tests, and the "untrusted" certificate fault). */
  static async create(trustDomain: string, now = new Date()): Promise<MeshCA> {
    const keys = (await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify'])) as CryptoKeyPair
    const name = `O=meshsim, CN=meshsim root CA ${trustDomain}`
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: serial(),
      name,
      notBefore: new Date(now.getTime() - BACKDATE_MS),
      notAfter: new Date(now.getTime() + ROOT_TTL_MS),
      keys,
      signingAlgorithm: SIGNING,
      extensions: [
        new x509.BasicConstraintsExtension(true, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ],
    })
    return new MeshCA(cert.toString('pem'), keys.privateKey, name, cert.notAfter)
  }

  private static async load(certFile: string, keyFile: string): Promise<MeshCA> {
    let certPem: string, keyPem: string
    try {
      certPem = readFileSync(certFile, 'utf8')
      keyPem = readFileSync(keyFile, 'utf8')
    } catch (error) {
      throw new MeshError('MESH_CA_INVALID', `cannot read the mesh CA in ${certFile}: ${(error as Error).message}`, {
        hints: ['Fix its permissions, or remove the directory to have `mesh up` create a new CA (certificates trusted from the old one stop verifying).'],
      })
    }
    try {
      const cert = new x509.X509Certificate(certPem)
      const nodeCert = new X509Certificate(certPem)
      if (!nodeCert.checkPrivateKey(createPrivateKey(keyPem))) throw new Error(`${keyFile} is not the key of ${certFile}`)
      const key = await webcrypto.subtle.importKey('pkcs8', pemBody(keyPem), EC, true, ['sign'])
      return new MeshCA(certPem, key as CryptoKey, cert.subject, cert.notAfter)
    } catch (error) {
      throw new MeshError('MESH_CA_INVALID', `the mesh CA in ${certFile} is not usable: ${(error as Error).message}`, {
        hints: ['Remove the directory to have `mesh up` create a new CA (certificates trusted from the old one stop verifying).'],
      })
    }
  }

  /** A leaf signed by this CA, with a key of its own. */
  async issue(request: LeafRequest): Promise<IssuedCertificate> {
    const keys = (await webcrypto.subtle.generateKey(EC, true, ['sign', 'verify'])) as CryptoKeyPair
    const names: x509.JsonGeneralName[] = [
      ...(request.uri ? [{type: 'url' as const, value: request.uri}] : []),
      ...(request.dnsNames ?? []).map((value) => ({type: 'dns' as const, value})),
      ...(request.ipAddresses ?? []).map((value) => ({type: 'ip' as const, value})),
    ]
    const notBefore = new Date(request.now.getTime() - BACKDATE_MS)
    const notAfter = new Date(request.now.getTime() + request.ttlMs)
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: serial(),
      subject: `O=meshsim, CN=${request.commonName}`,
      issuer: this.name,
      notBefore,
      notAfter,
      publicKey: keys.publicKey,
      signingKey: this.key,
      signingAlgorithm: SIGNING,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
        new x509.SubjectAlternativeNameExtension(names, Boolean(request.uri) && names.length === 1),
        await x509.AuthorityKeyIdentifierExtension.create(await this.publicKey()),
      ],
    })
    return {
      certPem: cert.toString('pem'),
      keyPem: await pkcs8Pem(keys.privateKey),
      serial: cert.serialNumber,
      notBefore,
      notAfter,
      ...(request.uri ? {uri: request.uri} : {}),
    }
  }

  private async publicKey(): Promise<CryptoKey> {
    return new x509.X509Certificate(this.certPem).publicKey.export(webcrypto as unknown as Crypto)
  }

  private keyPem(): Promise<string> {
    return pkcs8Pem(this.key)
  }
}

/** 16 random bytes with the top bit clear: a positive serial, as RFC 5280 asks. */
function serial(): string {
  const bytes = randomBytes(16)
  bytes[0] &= 0x7f
  return bytes.toString('hex')
}

async function pkcs8Pem(key: CryptoKey): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key))
  return x509.PemConverter.encode(der, 'PRIVATE KEY')
}

function pemBody(pem: string): ArrayBuffer {
  return x509.PemConverter.decodeFirst(pem)
}

