// Buffer's own encoders, which toString(encoding) calls after its argument checks and
// encoding lookup. On the data path that wrapper cost as much as the copy itself, and a
// string cut from these is a string of its own (a slice of a longer string keeps the
// whole of it alive).
interface EncodingSlices {
  latin1Slice(start: number, end: number): string
  hexSlice(start: number, end: number): string
}

/** `buf.toString('latin1', start, end)`, without the wrapper. */
export const latin1Of = (buf: Buffer, start = 0, end = buf.length): string => (buf as unknown as EncodingSlices).latin1Slice(start, end)

/** `buf.toString('hex', start, end)`, without the wrapper. */
export const hexOf = (buf: Buffer, start: number, end: number): string => (buf as unknown as EncodingSlices).hexSlice(start, end)
