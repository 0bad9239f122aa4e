import {describe, expect, test} from 'vitest'
import {eventually} from './mesh.js'

describe('eventually', () => {
  test('returns the first truthy value, retrying through falsy values and errors', async () => {
    let calls = 0
    const got = await eventually(() => {
      calls++
      if (calls === 1) throw new Error('not yet')
      return calls >= 3 ? {calls} : undefined
    }, 2_000, 1)
    expect(got).toEqual({calls: 3})
  })

  test('throws on timeout with the last value it saw, so an unchecked await still fails', async () => {
    await expect(eventually(() => ({ok: false}).ok, 30, 5)).rejects.toThrow(/not true within 30 ms; last time it returned false/)
  })

  test('throws on timeout with the last error it saw, and the context asked for', async () => {
    await expect(eventually(() => { throw new Error('503 from api') }, 30, 5, () => 'the screen')).rejects.toThrow(/last time it threw 503 from api\nthe screen/)
  })
})
