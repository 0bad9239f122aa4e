// PEM files named in mesh.yaml (`ingress.tls`, `policy.tls`): read and parsed at `mesh validate`,
// so a missing file, one that is not PEM, or a key that is not its certificate's is reported at
// the field that names it rather than found by the first connection.
import {createPrivateKey, X509Certificate} from 'node:crypto'
import {readFileSync} from 'node:fs'
import type {At} from './checker.js'

export type PemKind = 'certificate' | 'private key'

/**
 * The file's text when it parses as `kind` (every certificate of a bundle: one bad block would be
 * skipped by some TLS stacks and not others); otherwise undefined, reported at `at`.
 */
export function readPemFile(at: At, path: string, kind: PemKind): string | undefined {
  let pem: string
  try {
    pem = readFileSync(path, 'utf8')
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    return at.error(code === 'ENOENT' ? `${path} does not exist (paths are relative to mesh.yaml)` : `cannot read ${path}: ${code ?? (error as Error).message}`)
  }
  try {
    if (kind === 'private key') createPrivateKey(pem)
    else {
      const blocks = certificateBlocks(pem)
      if (blocks.length === 0) throw new Error('no BEGIN CERTIFICATE block')
      for (const block of blocks) new X509Certificate(block)
    }
  } catch (error) {
    return at.error(`${path} is not a PEM ${kind}: ${(error as Error).message}`)
  }
  return pem
}

export function certificateBlocks(pem: string): string[] {
  return pem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? []
}

/** Whether `keyPem` is the private key of the first certificate in `certPem`. */
export function keyMatches(certPem: string, keyPem: string): boolean {
  try {
    return new X509Certificate(certificateBlocks(certPem)[0]).checkPrivateKey(createPrivateKey(keyPem))
  } catch {
    return false
  }
}
