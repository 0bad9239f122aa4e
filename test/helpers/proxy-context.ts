// A request and a call context for testing one proxy layer over a scripted inner service.
import type {Endpoint} from '../../src/sim/proxy/registry.js'
import type {ResponseBody} from '../../src/sim/proxy/body.js'
import {Cancellation} from '../../src/sim/proxy/cancellation.js'
import {type CallContext, callService, type Layer, type MeshRequest, type MeshResponse, replyWith, type Service} from '../../src/sim/proxy/stack.js'
import type {VirtualClock} from '../../src/sim/time/clock.js'

export const meshRequest = (over: Partial<MeshRequest> = {}): MeshRequest => ({
  method: 'GET',
  path: '/',
  headers: {},
  body: null,
  replayable: true,
  destination: 'api',
  source: 'test',
  peer: {identity: over.source ?? 'test', authn: 'listener'},
  ...over,
})

/** `controller` aborts the call (the client left, or the canceller from a timeout); `endpoint` is the instance already chosen. */
export const callContext = (clock: VirtualClock, opts: {controller?: Cancellation; endpoint?: Partial<Endpoint>} = {}): CallContext => {
  const controller = opts.controller ?? new Cancellation()
  return {
    clock,
    signal: controller,
    canceller: controller,
    traceId: '0af7651916cd43dd8448eb211c80319c',
    traceFlags: '01',
    clientSpanId: 'b7ad6b7169203331',
    decision: {},
    attempt: 1,
    tried: new Set(),
    endpoint: opts.endpoint as Endpoint | undefined,
  }
}

/** Reads a whole response body: its bytes, and the error if it was cut. */
export function readBody(body: ResponseBody): Promise<{bytes: Buffer; error?: Error}> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = []
    body.pipeTo({
      write(chunk) {
        chunks.push(chunk)
        return true
      },
      end: () => resolve({bytes: Buffer.concat(chunks)}),
      abort: (error) => resolve({bytes: Buffer.concat(chunks), error}),
    })
  })
}

/** A service as the tests write and drive one: a promise of its answer. */
export type AsyncService = (req: MeshRequest, ctx: CallContext) => Promise<MeshResponse>

/** An async test double as a service of the stack. */
export const fromAsync =
  (fn: AsyncService): Service =>
  (req, ctx, reply) =>
    replyWith(fn(req, ctx), reply)

/** A layer (or layers) seen through promises: over an async inner service, answering with a promise. */
export const viaPromises =
  (layer: Layer) =>
  (inner: AsyncService): AsyncService => {
    const service = layer(fromAsync(inner))
    return (req, ctx) => callService(service, req, ctx)
  }
