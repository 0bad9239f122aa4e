// When one instance fails while the mesh starts, only its service's progress line says
// FAILED; the others say they were not started, instead of each repeating that failure.
import {describe, expect, test, vi} from 'vitest'
import {failedService, showStartup} from '../../src/cli/startup-progress.js'
import {MeshError} from '../../src/sim/errors.js'
import {parsed, yaml} from '../config/helpers.js'

const config = parsed(
  yaml(
    'name: crash',
    'services:',
    '  front: {dependsOn: [ratings], simulate: {latency: 1ms}}',
    '  ratings: {command: ./ratings}',
    '  ratings-v1: {simulate: {latency: 1ms}, versions: {v2: {}}}',
  ),
)
const crashed = new MeshError('MESH_STARTUP_FAILED', 'instance ratings-v1-0 crashed 3 times while starting (exit code 3).')

describe('failedService', () => {
  test('names the service of the instance the error names, whatever dashes the names have', () => {
    expect(failedService(config, crashed)).toBe('ratings')
    expect(failedService(config, new MeshError('MESH_STARTUP_FAILED', 'instance ratings-v1-v2-1 did not get healthy within 60s.'))).toBe('ratings-v1')
  })

  test('names none for an error about no instance (the daemon, a port)', () => {
    expect(failedService(config, new MeshError('MESH_PORT_IN_USE', 'port 8000 is already in use; the ingress wants it.'))).toBeUndefined()
    expect(failedService(config, undefined)).toBeUndefined()
  })
})

test('the progress marks only the failed service FAILED', async () => {
  let out = ''
  const write = (chunk: string | Uint8Array) => {
    out += String(chunk)
    return true
  }
  const spies = [vi.spyOn(process.stdout, 'write').mockImplementation(write), vi.spyOn(process.stderr, 'write').mockImplementation(write)]
  try {
    const started = Promise.reject(crashed)
    await expect(showStartup(config, () => undefined, started, {silent: false})).rejects.toBe(crashed)
  } finally {
    for (const spy of spies) spy.mockRestore()
  }
  const failedLines = out.split('\n').filter((l) => l.includes('FAILED'))
  expect(failedLines).toHaveLength(1)
  expect(failedLines[0]).toMatch(/ratings \(1 instance\)/)
  expect(out).toContain('front: not started (mesh up stopped)')
  expect(out).toContain('ratings-v1: not started (mesh up stopped)')
})
