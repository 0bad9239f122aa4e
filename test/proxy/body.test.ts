// The response body between undici (or a fault) and the client: what reaches the
// consumer, when, and what the producer is told.
import {describe, expect, test} from 'vitest'
import {type BodySink, ResponseBody} from '../../src/sim/proxy/body.js'

/** A sink that records every call, and says "full" while `full` is set. */
function recorder() {
  const log: string[] = []
  const sink: BodySink & {full: boolean} = {
    full: false,
    write(chunk) {
      log.push(`write ${chunk.toString()}`)
      return !sink.full
    },
    end: () => log.push('end'),
    abort: (error) => log.push(`abort ${error.message}`),
  }
  return {log, sink}
}

function source() {
  const log: string[] = []
  return {log, resume: () => log.push('resume'), cancel: (error?: Error) => log.push(`cancel ${error === undefined ? 'discarded' : error.message}`)}
}

describe('response body', () => {
  test('chunks and the end reach an attached consumer synchronously, in order', () => {
    const body = new ResponseBody()
    const {log, sink} = recorder()
    body.pipeTo(sink)
    expect(body.push(Buffer.from('a'))).toBe(true)
    body.push(Buffer.from('b'))
    body.end()
    // No tick passed: the client's response gets its last chunk and its end in the same write.
    expect(log).toEqual(['write a', 'write b', 'end'])
    expect(body.closed).toBe(true)
  })

  test('what arrives before the consumer is held and delivered when it attaches; the done callbacks run once, after', () => {
    const body = ResponseBody.of('x', 'y')
    const done: string[] = []
    body.onDone(() => done.push('first'))
    expect(body.closed).toBe(false)
    const {log, sink} = recorder()
    body.pipeTo(sink)
    expect(log).toEqual(['write x', 'write y', 'end'])
    expect(done).toEqual(['first'])
    body.onDone(() => done.push('late'))
    expect(done).toEqual(['first', 'late'])
  })

  test('a full consumer holds the rest (and the end) and stops the producer until it drains', () => {
    const src = source()
    const body = new ResponseBody(src)
    const {log, sink} = recorder()
    body.pipeTo(sink)
    sink.full = true
    expect(body.push(Buffer.from('1'))).toBe(false)
    expect(body.push(Buffer.from('2'))).toBe(false)
    body.end()
    expect(log).toEqual(['write 1'])
    sink.full = false
    body.resume()
    expect(log).toEqual(['write 1', 'write 2', 'end'])
    // The producer had finished: nothing to resume.
    expect(src.log).toEqual([])

    const src2 = source()
    const body2 = new ResponseBody(src2)
    const r2 = recorder()
    body2.pipeTo(r2.sink)
    r2.sink.full = true
    body2.push(Buffer.from('1'))
    r2.sink.full = false
    body2.resume()
    expect(src2.log).toEqual(['resume'])
  })

  test('without a consumer the producer may run ahead up to 64 KB, then is told to stop', () => {
    const body = new ResponseBody()
    const kb = Buffer.alloc(1024)
    let accepted = 0
    while (body.push(kb) && accepted < 1000) accepted++
    expect(accepted).toBe(63)
  })

  test('the producer failing: the consumer gets what came, then the cut; errored says why', () => {
    const body = new ResponseBody()
    const {log, sink} = recorder()
    body.push(Buffer.from('part'))
    body.fail(new Error('reset by peer'))
    body.pipeTo(sink)
    expect(log).toEqual(['write part', 'abort reset by peer'])
    expect(body.errored?.message).toBe('reset by peer')
  })

  test('destroy with a reason cuts the consumer and cancels the producer; without one, it is dropped quietly', () => {
    const src = source()
    const body = new ResponseBody(src)
    const {log, sink} = recorder()
    body.pipeTo(sink)
    body.push(Buffer.from('a'))
    body.destroy(new Error('deadline'))
    expect(log).toEqual(['write a', 'abort deadline'])
    expect(src.log).toEqual(['cancel deadline'])
    expect(body.push(Buffer.from('late'))).toBe(false)

    const quiet = source()
    const discarded = new ResponseBody(quiet)
    const done: boolean[] = []
    discarded.onDone(() => done.push(discarded.errored === null))
    discarded.destroy()
    expect(quiet.log).toEqual(['cancel discarded'])
    expect(done).toEqual([true])
  })

  test('a producer that already finished is not cancelled; a destroyed body cuts a consumer that attaches later', () => {
    const src = source()
    const body = new ResponseBody(src)
    body.push(Buffer.from('all'))
    body.end()
    body.destroy()
    expect(src.log).toEqual([])
    const {log, sink} = recorder()
    body.pipeTo(sink)
    expect(log).toEqual(['abort response discarded'])
  })

  test('discard reads to the end and drops the bytes (a mirrored reply)', () => {
    const src = source()
    const body = new ResponseBody(src)
    body.discard()
    expect(body.push(Buffer.alloc(1 << 20))).toBe(true)
    body.end()
    expect(body.closed).toBe(true)
    expect(() => body.pipeTo(recorder().sink)).toThrow(/one consumer/)
  })
})
