// Row (e) of `npm run bench`: a mesh call with STRICT mTLS to an instance that serves TLS
// itself (policy.tls ISTIO_MUTUAL: the daemon presents the caller's mesh certificate and
// checks the instance's SPIFFE ID), next to the same mesh's plaintext call, in one mesh and
// one run. Two figures, each a median of alternating pairs (this VM's speed wanders):
//
//   keep-alive    daemon CPU per request, TLS ÷ plaintext, connections reused (handshakes amortized)
//   handshake     every request on a new connection (the upstream answers Connection: close):
//                 daemon CPU of a TLS request − of a plaintext one = one handshake's cost,
//                 also as a multiple of one plaintext keep-alive call
//
//   client → ingress ──/──────────▶ api     (plaintext upstream)
//                    └─/tls───────▶ apitls  (the same upstream, serving HTTPS, client certificates required)
import {execFileSync} from 'node:child_process'
import {mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import {fmt, pinned, REPO, startServer, stopChild} from './lib.js'

const CLI = path.join(REPO, 'bin', 'run.js')
const POLICY = ['    policy:', '      loadBalancer: ewma', '      timeout: 2s', '      retries: {attempts: 2, perTryTimeout: 1s}']

/**
 * `measure(target, pid, seconds)` → daemon CPU µs/req and errors of one closed-loop run
 * (run.js's maxLoad). `plainPort`: the plaintext upstream already running.
 */
export async function tlsRow({measure, log, plainPort, serverCpu, pairs, pairSeconds}) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'meshsim-bench-tls-'))
  const file = path.join(dir, 'mesh.yaml')
  let upstream
  let up = false
  try {
    // The mesh CA made before `mesh up`, which reuses it: the upstream's certificate must come from it.
    const {MeshCA} = await import(path.join(REPO, 'dist', 'sim', 'security', 'mesh-ca.js'))
    mkdirSync(path.join(dir, '.mesh'), {recursive: true, mode: 0o700})
    const ca = await MeshCA.loadOrCreate(path.join(dir, '.mesh', 'ca'), 'cluster.local')
    const leaf = await ca.issue({uri: 'spiffe://cluster.local/ns/benchtls/sa/apitls', ttlMs: 24 * 3600_000, now: new Date(), commonName: 'apitls'})
    const files = {TLS_CERT: path.join(dir, 'up.crt'), TLS_KEY: path.join(dir, 'up.key'), TLS_CA: path.join(dir, 'ca.crt')}
    writeFileSync(files.TLS_CERT, leaf.certPem)
    writeFileSync(files.TLS_KEY, leaf.keyPem, {mode: 0o600})
    writeFileSync(files.TLS_CA, ca.certPem)
    upstream = await startServer('upstream.js', {PORT: '0', ...files}, serverCpu)
    writeFileSync(
      file,
      [
        'name: benchtls',
        'security: {mtls: STRICT}',
        'ingress:',
        '  port: 0',
        '  routes: [{prefix: /tls, service: apitls}, {prefix: /, service: api}]',
        'services:',
        '  api:',
        `    address: 127.0.0.1:${plainPort}`,
        ...POLICY,
        '  apitls:',
        `    address: 127.0.0.1:${upstream.port}`,
        ...POLICY,
        '      tls: {mode: ISTIO_MUTUAL}',
        '',
      ].join('\n'),
    )
    const [cmd, args] = pinned(serverCpu, process.execPath, [CLI, 'up', '-d', '-f', file])
    up = true
    execFileSync(cmd, args, {cwd: dir, stdio: 'ignore', timeout: 60_000})
    const state = JSON.parse(readFileSync(path.join(dir, '.mesh', 'state.json'), 'utf8'))
    const daemon = state.daemon.pid
    const at = (p) => state.ingressUrl + p
    for (const p of ['/', '/tls/', '/close', '/tls/close']) {
      const res = await fetch(at(p))
      const body = await res.text()
      if (res.status !== 200 || !body.includes('hello from the benchmark upstream')) throw new Error(`row (e) sanity check of ${p}: ${res.status} ${res.headers.get('x-mesh-reason') ?? body.slice(0, 200)}`)
    }
    // JIT, pools and (for TLS) the first handshakes before anything is measured.
    for (const p of ['/', '/tls/', '/close', '/tls/close']) await measure(at(p), daemon, 1)
    const paired = async (what, plainPath, tlsPath) => {
      log(`(e) ${what}: ${pairs} × (plaintext, TLS) closed-loop runs of ${pairSeconds} s, alternating …`)
      const out = []
      for (let i = 0; i < pairs; i++) {
        const one = (p) => measure(at(p), daemon, pairSeconds)
        let plain, secure
        if (i % 2 === 0) {
          plain = await one(plainPath)
          secure = await one(tlsPath)
        } else {
          secure = await one(tlsPath)
          plain = await one(plainPath)
        }
        out.push({plain, secure})
        log(`  pair ${i + 1}: plaintext ${fmt.f(plain.cpu, 1)} µs/req, TLS ${fmt.f(secure.cpu, 1)} µs/req, ${fmt.x(secure.cpu / plain.cpu)}`)
      }
      const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
      return {
        plain: median(out.map((p) => p.plain.cpu)),
        secure: median(out.map((p) => p.secure.cpu)),
        ratio: median(out.map((p) => p.secure.cpu / p.plain.cpu)),
        extra: median(out.map((p) => p.secure.cpu - p.plain.cpu)),
        errors: out.reduce((n, p) => n + p.plain.errors + p.secure.errors, 0),
      }
    }
    const keepAlive = await paired('keep-alive', '/', '/tls/')
    const handshake = await paired('a new connection per request', '/close', '/tls/close')
    return {keepAlive, handshake, errors: keepAlive.errors + handshake.errors}
  } finally {
    if (up) try { execFileSync(process.execPath, [CLI, 'down', '-f', file], {cwd: dir, stdio: 'ignore', timeout: 30_000}) } catch {}
    if (upstream) await stopChild(upstream.child)
    rmSync(dir, {recursive: true, force: true})
  }
}

/** The lines the report prints for row (e). */
export function tlsReport(e) {
  const k = e.keepAlive
  const h = e.handshake
  return [
    '(e) meshsim: 1 mesh call, STRICT mTLS, ISTIO_MUTUAL to an instance serving TLS, against the same mesh\'s plaintext call (paired medians, daemon CPU):',
    `  keep-alive (handshakes amortized): plaintext ${fmt.f(k.plain, 1)} µs/req, TLS ${fmt.f(k.secure, 1)} µs/req → ${fmt.x(k.ratio)} (+${fmt.f(k.extra, 1)} µs/req)`,
    `  a new connection per request:      plaintext ${fmt.f(h.plain, 1)} µs/req, TLS ${fmt.f(h.secure, 1)} µs/req → one handshake ≈ ${fmt.f(h.extra, 0)} µs of daemon CPU` +
      ` = ${fmt.x(h.extra / k.plain)} a plaintext keep-alive call`,
    `  errors: ${e.errors}`,
  ]
}
