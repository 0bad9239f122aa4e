// The path normalizer: Istio's DECODE_AND_MERGE_SLASHES, query untouched, bad paths refused.
import {describe, expect, test} from 'vitest'
import {normalizePath} from '../../src/sim/security/path-normalizer.js'

const normal = (target: string) => {
  const r = normalizePath(target)
  if (typeof r !== 'string') throw new Error(`${target} was rejected: ${r.reason}`)
  return r
}
const rejection = (target: string) => {
  const r = normalizePath(target)
  if (typeof r === 'string') throw new Error(`${target} was accepted as ${r}`)
  return r.reason
}

describe('normalizePath', () => {
  // RFC 3986 §5.4.1 and §5.4.2 against the base /b/c/d;p, written as the merged path §5.2.3 makes.
  test.each([
    ['/b/c/./g', '/b/c/g'],
    ['/b/c/g/', '/b/c/g/'],
    ['/b/c/.', '/b/c/'],
    ['/b/c/./', '/b/c/'],
    ['/b/c/..', '/b/'],
    ['/b/c/../', '/b/'],
    ['/b/c/../g', '/b/g'],
    ['/b/c/../..', '/'],
    ['/b/c/../../', '/'],
    ['/b/c/../../g', '/g'],
    ['/b/c/../../../g', '/g'],
    ['/b/c/../../../../g', '/g'],
    ['/./g', '/g'],
    ['/../g', '/g'],
    ['/b/c/g.', '/b/c/g.'],
    ['/b/c/.g', '/b/c/.g'],
    ['/b/c/g..', '/b/c/g..'],
    ['/b/c/..g', '/b/c/..g'],
    ['/b/c/./../g', '/b/g'],
    ['/b/c/./g/.', '/b/c/g/'],
    ['/b/c/g/./h', '/b/c/g/h'],
    ['/b/c/g/../h', '/b/c/h'],
    ['/b/c/g;x=1/./y', '/b/c/g;x=1/y'],
    ['/b/c/g;x=1/../y', '/b/c/y'],
    // §5.2.4's own walk-through.
    ['/a/b/c/./../../g', '/a/g'],
  ])('RFC 3986 dot segments: %s → %s', (input, expected) => {
    expect(normal(input)).toBe(expected)
  })

  // The five paths of issue #18.3 that passed /public/* and reached the service.
  test.each([
    ['/public/../admin', '/admin'],
    ['/public/%2e%2e/admin', '/admin'],
    ['/public/..%2fadmin', '/admin'],
    ['/public/./../admin', '/admin'],
    ['/public/x/../../secret', '/secret'],
  ])('the bypass %s is %s', (input, expected) => {
    expect(normal(input)).toBe(expected)
  })

  test.each([
    ['/a%2Fb', '/a/b'],
    ['/a%2fb', '/a/b'],
    ['/a%5Cb', '/a/b'],
    ['/a%5c..%5cb', '/b'],
    ['/a\\b', '/a/b'],
    ['/a/..\\admin', '/admin'],
    ['/a%2F%2F%2Fb', '/a/b'],
  ])('encoded slashes and backslashes are slashes (DECODE_AND_MERGE_SLASHES): %s → %s', (input, expected) => {
    expect(normal(input)).toBe(expected)
  })

  test.each([
    ['/a//b', '/a/b'],
    ['//a///b//', '/a/b/'],
    ['//', '/'],
    // Dots before merging, as Envoy: the empty segment is what `..` removes.
    ['/a//../b', '/a/b'],
    ['/a/..//b', '/b'],
  ])('slashes merged: %s → %s', (input, expected) => {
    expect(normal(input)).toBe(expected)
  })

  test.each([
    ['/%7Euser', '/~user'],
    ['/%41%62%2D%5f%30%2E', '/Ab-_0.'],
    ['/a%3Fb', '/a%3Fb'],
    ['/a%3fb', '/a%3fb'],
    ['/a%20b', '/a%20b'],
    ['/a%25b', '/a%25b'],
    ['/%252e%252e/admin', '/%252e%252e/admin'],
    ['/caf%C3%A9', '/caf%C3%A9'],
  ])('unreserved characters decoded, everything else kept as sent: %s → %s', (input, expected) => {
    expect(normal(input)).toBe(expected)
  })

  test.each([
    ['/a/../b?x=../y&z=%2e%2e//%zz', '/b?x=../y&z=%2e%2e//%zz'],
    ['/a?', '/a?'],
    ['/a/./?q', '/a/?q'],
    ['/a%2e?b/../c', '/a.?b/../c'],
  ])('the query goes on untouched: %s → %s', (input, expected) => {
    expect(normal(input)).toBe(expected)
  })

  test.each([
    ['http://catalog/items/../admin?x=1', '/admin?x=1'],
    ['http://catalog:9080', '/'],
    ['http://catalog?x', '/?x'],
    ['HTTP://user@catalog.mesh/a//b', '/a/b'],
  ])('absolute form: the path of %s is %s', (input, expected) => {
    expect(normal(input)).toBe(expected)
  })

  test('a path already normal is returned as the very same string', () => {
    for (const path of ['/', '/api/items', '/a.b/c..d/.well-known/x', '/a?b=//c&d=/../e', '/items/42?page=2', '*']) {
      expect(normalizePath(path)).toBe(path)
    }
  })

  test('normalizing twice changes nothing more', () => {
    for (const path of ['/a/%2e%2e/b//c/./', '/a%5c%2e%2e%2fb', '/x/../../y/.', '/%7e/%2541']) {
      const once = normal(path)
      expect(normal(once)).toBe(once)
    }
  })

  test.each([
    ['/a%zz', 'invalid percent-encoding "%zz"'],
    ['/a%2', 'invalid percent-encoding "%2"'],
    ['/a%', 'invalid percent-encoding "%"'],
    ['/a%4?x', 'invalid percent-encoding "%4"'],
    ['/a%00b', 'encoded NUL (%00)'],
    ['/a#frag', 'a fragment (#)'],
    ['/a?b#frag', 'a fragment (#)'],
    ['/a b', 'a space in the path'],
    ['/a\u0000b', 'a control character (0x00)'],
    ['/a\nb', 'a control character (0x0a)'],
    ['/a?b\u007f', 'a control character (0x7f)'],
    ['/caf\u00e9', 'a non-ASCII character'],
    ['admin', 'is not a path (it must start with /)'],
    ['catalog:443', 'is not a path'],
  ])('%j is refused: %s', (input, reason) => {
    expect(rejection(input)).toContain(reason)
  })

  test('a refusal names the path, cut when long, in ASCII a header can carry', () => {
    const reason = rejection(`/${'x'.repeat(500)}%zz`)
    expect(reason.length).toBeLessThan(300)
    expect(reason).toMatch(/^[\x20-\x7e]+$/)
    expect(rejection('/a\u0001%zz')).toMatch(/^[\x20-\x7e]+$/)
    expect(rejection('/caf\u00e9')).toContain('"/caf\\u00e9"')
  })
})
