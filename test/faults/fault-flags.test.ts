// `mesh inject-fault` flags and mesh.yaml / scenario fault entries → FaultSpec,
// through the one checker: what each flag means, and what each mistake says.
import {describe, expect, test} from 'vitest'
import {MeshError} from '../../src/sim/errors.js'
import {checkFault, parseBandwidth, parseHeader, parsePercent} from '../../src/sim/faults/fault-config.js'
import {type FaultFlags, flagName, parseFaultFlags, withOptionalValues} from '../../src/sim/faults/fault-flags.js'
import {describeFault, type FaultSpec} from '../../src/sim/faults/fault.js'

/** The MeshError parseFaultFlags throws (the test fails if it does not throw). */
function flagError(target: string, flags: FaultFlags, known?: Record<string, string[]>): MeshError {
  try {
    parseFaultFlags(target, flags, known)
  } catch (error) {
    expect(error).toBeInstanceOf(MeshError)
    expect((error as MeshError).code).toBe('MESH_BAD_FLAG')
    return error as MeshError
  }
  throw new Error(`expected ${JSON.stringify(flags)} to be rejected`)
}

describe('fault flags → FaultSpec', () => {
  test('each kind, with its modifiers', () => {
    expect(parseFaultFlags('payments', {delay: '300ms', jitter: '50ms'})).toEqual({service: 'payments', kind: 'delay', delayMs: 300, jitterMs: 50})
    expect(parseFaultFlags('payments@v2', {abort: '503'})).toEqual({service: 'payments', version: 'v2', kind: 'abort', status: 503})
    expect(parseFaultFlags('inv', {reset: true})).toEqual({service: 'inv', kind: 'reset'})
    expect(parseFaultFlags('inv', {reset: true, 'after-bytes': '1kb'})).toEqual({service: 'inv', kind: 'reset', afterBytes: 1024})
    expect(parseFaultFlags('inv', {partition: true})).toEqual({service: 'inv', kind: 'partition'})
    expect(parseFaultFlags('inv', {partition: true, blackhole: true})).toEqual({service: 'inv', kind: 'partition', blackhole: true})
    expect(parseFaultFlags('inv', {bandwidth: '16kb/s'})).toEqual({service: 'inv', kind: 'bandwidth', bytesPerSecond: 16384})
    expect(parseFaultFlags('inv', {'slow-close': '2s'})).toEqual({service: 'inv', kind: 'slow-close', delayMs: 2000})
    expect(parseFaultFlags('cart', {kill: '2'})).toEqual({service: 'cart', kind: 'kill', count: 2})
    expect(parseFaultFlags('cart', {pause: '3s', count: '2'})).toEqual({service: 'cart', kind: 'pause', pauseMs: 3000, count: 2})
  })

  test('selectors and lifetime', () => {
    expect(
      parseFaultFlags('payments', {
        abort: '500',
        percent: '30',
        from: 'cart',
        header: 'X-User=alice',
        path: '/pay',
        duration: '60s',
        seed: '7',
        at: 'caller',
      }),
    ).toEqual({
      service: 'payments',
      kind: 'abort',
      status: 500,
      percent: 30,
      from: 'cart',
      header: {name: 'x-user', value: 'alice'},
      pathPrefix: '/pay',
      durationMs: 60_000,
      seed: 7,
      at: 'caller',
    })
    expect(parseFaultFlags('payments', {abort: '503', first: '2'})).toEqual({service: 'payments', kind: 'abort', status: 503, first: 2})
    expect(parseFaultFlags('payments', {abort: '503', from: 'ingress', percent: '0'}).percent).toBe(0)
  })

  test('--abort takes a gRPC status by name, as Istio\'s abort.grpcStatus: a gRPC call gets it, an HTTP request its HTTP equivalent', () => {
    expect(parseFaultFlags('ratings', {abort: 'UNAVAILABLE'})).toEqual({service: 'ratings', kind: 'abort', status: 503, grpcStatus: 14})
    expect(parseFaultFlags('ratings', {abort: 'deadline-exceeded'})).toMatchObject({status: 504, grpcStatus: 4})
    expect(parseFaultFlags('ratings', {abort: 'not_found'})).toMatchObject({status: 404, grpcStatus: 5})
    expect(describeFault(parseFaultFlags('ratings', {abort: 'unavailable'}) as FaultSpec)).toBe('abort UNAVAILABLE')
    // OK is no failure to inject.
    expect(flagError('ratings', {abort: 'OK'}).message).toMatch(/--abort: expected an HTTP status from 200 to 599 \(such as 503\) or a gRPC status \(such as UNAVAILABLE\), got "OK"/)
  })

  test('no kind, or two kinds: says which flags choose one', () => {
    expect(flagError('payments', {percent: '30'}).message).toMatch(/needs one kind: --delay, --abort, --reset, --partition, --bandwidth, --slow-close, --kill, --pause/)
    expect(flagError('payments', {delay: '1s', abort: '503'}).message).toMatch(/one kind per fault, got --delay and --abort; inject them as separate faults/)
  })

  test('a modifier without its kind, or a selector on a process fault, is named', () => {
    expect(flagError('p', {abort: '503', jitter: '5ms'}).message).toMatch(/--jitter goes with --delay, not --abort/)
    expect(flagError('p', {delay: '5ms', 'after-bytes': '10'}).message).toMatch(/--after-bytes goes with --reset/)
    expect(flagError('p', {abort: '503', blackhole: true}).message).toMatch(/--blackhole goes with --partition/)
    expect(flagError('p', {kill: '1', percent: '50'}).message).toMatch(/--percent does not apply to --kill: it acts on processes/)
    expect(flagError('p', {pause: '3s', duration: '10s'}).message).toMatch(/--duration does not apply to --pause: --pause already says how long/)
    expect(flagError('p', {abort: '503', first: '2', percent: '50'}).message).toMatch(/--first and --percent do not combine/)
    expect(flagError('p@v2', {abort: '503', at: 'caller'}).message).toMatch(/--at caller acts before a version is chosen, so it cannot target p@v2/)
  })

  test('--path is normalized as request paths are, so it matches what the service gets', () => {
    expect(parseFaultFlags('payments', {abort: '503', path: '/pay/./v1//%7Ealice/../now'}).pathPrefix).toBe('/pay/v1/now')
    expect(parseFaultFlags('payments', {abort: '503', path: '/pay/'}).pathPrefix).toBe('/pay/')
  })

  test('bad values say what was expected and what was given', () => {
    expect(flagError('p', {delay: 'soon'}).message).toBe('--delay: expected a positive duration such as 300ms or 2s, got "soon".')
    expect(flagError('p', {delay: '0ms'}).message).toMatch(/--delay: expected a positive duration/)
    expect(flagError('p', {abort: '99'}).message).toMatch(/--abort: expected an HTTP status from 200 to 599/)
    expect(flagError('p', {abort: 'x'}).message).toMatch(/--abort: expected an HTTP status/)
    expect(flagError('p', {abort: '503', percent: '120'}).message).toMatch(/--percent: expected a percentage from 0 to 100/)
    expect(flagError('p', {abort: '503', first: '0'}).message).toMatch(/--first: expected a whole number of at least 1, got "0"/)
    expect(flagError('p', {abort: '503', header: 'novalue'}).message).toMatch(/--header: expected one header as name=value/)
    expect(flagError('p', {abort: '503', path: 'pay'}).message).toMatch(/--path: expected a path prefix starting with \//)
    expect(flagError('p', {abort: '503', path: '/pay%zz'}).message).toMatch(/--path: an invalid percent-encoding "%zz" in the path "\/pay%zz"/)
    expect(flagError('p', {abort: '503', at: 'middle'}).message).toMatch(/--at: expected callee .* or caller/)
    expect(flagError('p', {abort: '503', seed: '-1'}).message).toMatch(/--seed: expected a whole number/)
    expect(flagError('p', {bandwidth: 'fast'}).message).toMatch(/--bandwidth: expected bytes per time such as 16kb\/s/)
    expect(flagError('p', {reset: true, 'after-bytes': 'lots'}).message).toMatch(/--after-bytes: expected a byte count/)
    expect(flagError('p', {kill: 'all'}).message).toMatch(/--kill: expected a whole number of at least 1/)
  })

  test('every problem at once, and the target checked against the mesh', () => {
    const e = flagError('payments', {delay: 'x', percent: '300', path: 'y'})
    expect(e.message).toMatch(/^the fault has 3 problems:/)
    const known = {payments: ['v1', 'v2'], cart: ['v1']}
    expect(flagError('paymnts', {abort: '503'}, known).message).toMatch(/service "paymnts" is not in the mesh; did you mean "payments"\? \(known: payments, cart\)/)
    // Nothing close: no guess, the known names only.
    expect(flagError('billing', {abort: '503'}, known).message).toMatch(/service "billing" is not in the mesh \(known: payments, cart\)/)
    expect(flagError('payments@v3', {abort: '503'}, known).message).toMatch(/has no version "v3" \(its versions: v1, v2\)/)
    expect(flagError('payments', {abort: '503', from: 'crt'}, known).message).toMatch(/--from: "crt" is not a service in the mesh \(or ingress\); did you mean "cart"\?; known: payments, cart/)
    expect(flagError('payments', {abort: '503', from: 'ingres'}, known).message).toMatch(/did you mean "ingress"\?/)
    expect(flagError('Payments!', {abort: '503'}).message).toMatch(/expected a service name/)
    expect(flagError('paymnts', {abort: '503'}, known).hints.join('\n')).toMatch(/Example: mesh inject-fault/)
  })

  test('--kill and --slow-close take an optional value', () => {
    expect(withOptionalValues(['cart', '--kill'])).toEqual(['cart', '--kill=1'])
    expect(withOptionalValues(['--kill', 'cart'])).toEqual(['--kill=1', 'cart'])
    expect(withOptionalValues(['cart', '--kill', '2'])).toEqual(['cart', '--kill', '2'])
    expect(withOptionalValues(['cart', '--slow-close', '--json'])).toEqual(['cart', '--slow-close=1000ms', '--json'])
    expect(withOptionalValues(['cart', '--slow-close', '2s'])).toEqual(['cart', '--slow-close', '2s'])
    expect(flagName('afterBytes')).toBe('--after-bytes')
  })
})

describe('fault entries (mesh.yaml faults.inject, scenario steps)', () => {
  test('YAML values: numbers, booleans, percent strings, header maps', () => {
    expect(checkFault({service: 'payments', delay: '300ms', percent: '30%', header: {'x-user': 'alice'}, seed: 7})).toEqual({
      spec: {service: 'payments', kind: 'delay', delayMs: 300, percent: 30, header: {name: 'x-user', value: 'alice'}, seed: 7},
      problems: [],
    })
    expect(checkFault({service: 'cart', kill: true}).spec).toEqual({service: 'cart', kind: 'kill', count: 1})
    expect(checkFault({service: 'cart', kill: true, count: 2}).spec).toEqual({service: 'cart', kind: 'kill', count: 2})
    expect(checkFault({service: 'cart', slowClose: true}).spec).toEqual({service: 'cart', kind: 'slow-close', delayMs: 1000})
    expect(checkFault({service: 'cart', reset: true, afterBytes: 100}).spec).toEqual({service: 'cart', kind: 'reset', afterBytes: 100})
  })

  test('a delay without its unit is refused, naming the units (Istio requires them too)', () => {
    expect(checkFault({service: 'payments', delay: 300}).problems.map((p) => p.message).join('\n')).toContain('a duration needs a unit: ms, s, m or h; did you mean 300ms or 300s?')
  })

  test('problems carry the key they are about, every one reported', () => {
    expect(checkFault({service: 'cart', abort: 503, percnt: 5}).problems).toEqual([
      {path: 'percnt', message: expect.stringMatching(/^unknown key percnt; a fault takes service, version, delay/)},
    ])
    expect(checkFault({delay: '1s', reset: 'yes'}).problems.map((p) => p.path)).toEqual(['service', 'reset'])
    expect(checkFault({service: 'a', reset: 'yes', afterBytes: 'x'}).problems.map((p) => p.path)).toEqual(['reset', 'afterBytes'])
    expect(checkFault('payments').problems[0].message).toMatch(/expected a fault such as \{service: payments, delay: 300ms\}/)
    expect(checkFault({service: 'cart', kill: 2, count: 3}).problems).toEqual([{path: 'count', message: 'give the number once: kill N, or kill with count N'}])
  })

  test('mesh.yaml takes standing faults only: kill and pause are actions', () => {
    expect(checkFault({service: 'cart', kill: 1}, {perRequestOnly: true}).problems).toEqual([
      {path: 'kill', message: 'kill is a one-off action on processes, not a fault that stays; use `mesh inject-fault cart --kill` or a chaos scenario'},
    ])
    expect(checkFault({service: 'cart', abort: 503}, {perRequestOnly: true}).problems).toEqual([])
  })

  test('--cert: a bad certificate the whole service presents, on every connection, until cleared or --duration', () => {
    expect(parseFaultFlags('cart', {cert: 'expired'})).toEqual({service: 'cart', kind: 'cert', cert: 'expired'})
    expect(parseFaultFlags('cart', {cert: 'wrong-identity', duration: '2m'})).toEqual({service: 'cart', kind: 'cert', cert: 'wrong-identity', durationMs: 120_000})
    expect(describeFault(parseFaultFlags('cart', {cert: 'untrusted'}))).toBe('cert untrusted')
    expect(flagError('cart', {cert: 'expird'}).message).toMatch(/--cert: expected expired, untrusted, wrong-identity, got "expird"; did you mean "expired"\?/)
    expect(flagError('cart@v2', {cert: 'expired'}).message).toMatch(/--cert acts on cart's identity, which all its versions share; drop @v2/)
    expect(flagError('cart', {cert: 'expired', percent: '50'}).message).toMatch(/--percent does not apply to --cert: the certificate is presented on every connection/)
    expect(flagError('cart', {cert: 'expired', delay: '1s'}).message).toMatch(/one kind per fault/)
    // A standing fault in mesh.yaml: a service that starts with a bad certificate.
    expect(checkFault({service: 'cart', cert: 'untrusted'}, {perRequestOnly: true}).spec).toEqual({service: 'cart', kind: 'cert', cert: 'untrusted'})
  })

  test('helpers: bandwidth, percent, header', () => {
    expect(parseBandwidth('1mb/s')).toBe(1024 * 1024)
    expect(parseBandwidth('512b/100ms')).toBe(5120)
    expect(parseBandwidth('16kb/5')).toBeUndefined()
    expect(parseBandwidth('0kb/s')).toBeUndefined()
    expect(parsePercent('2.5%')).toBe(2.5)
    expect(parsePercent(101)).toBeUndefined()
    expect(parseHeader('x-a: b')).toEqual({name: 'x-a', value: 'b'})
    expect(parseHeader({a: 1, b: 2})).toBeUndefined()
  })
})
