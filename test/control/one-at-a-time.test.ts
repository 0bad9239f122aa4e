import {describe, expect, test} from 'vitest'
import {OneAtATime} from '../../src/sim/control/one-at-a-time.js'

const tick = () => new Promise((r) => setTimeout(r, 5))

describe('OneAtATime', () => {
  test('each change starts once the one before has settled, failed or not; a refused one runs nothing', async () => {
    const turns = new OneAtATime()
    const log: string[] = []
    const step = (name: string, fail = false) => async () => {
      log.push(`${name} start`)
      await tick()
      log.push(`${name} end`)
      if (fail) throw new Error(`${name} failed`)
      return name
    }
    const a = turns.run(step('a', true))
    const b = turns.run(step('b'))
    const refused = turns.run(step('c'), () => {
      throw new Error('stopping')
    })
    const d = turns.run(step('d'))
    await expect(a).rejects.toThrow('a failed')
    expect(await b).toBe('b')
    await expect(refused).rejects.toThrow('stopping')
    expect(await d).toBe('d')
    expect(log).toEqual(['a start', 'a end', 'b start', 'b end', 'd start', 'd end'])
  })
})
