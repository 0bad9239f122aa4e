import {describe, expect, test} from 'vitest'
import {describeEnd} from '../../src/cli/tap-line.js'

describe('what mesh tap says about how it ends', () => {
  test('a tap with --count or --duration stops by itself, and says so', () => {
    expect(describeEnd(5, undefined)).toBe('stops after 5 requests (or Ctrl-C)')
    expect(describeEnd(1, undefined)).toBe('stops after 1 request (or Ctrl-C)')
    expect(describeEnd(undefined, '30s')).toBe('stops after 30s (or Ctrl-C)')
    expect(describeEnd(5, '30s')).toBe('stops after 5 requests or 30s (or Ctrl-C)')
  })

  test('one without them runs until Ctrl-C', () => {
    expect(describeEnd(undefined, undefined)).toBe('Ctrl-C stops')
  })
})
