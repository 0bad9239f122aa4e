import {suggestion} from './config/did-you-mean.js'

// Errors the library throws. Each has a stable code (as undici's UND_ERR_*), a
// message that says what happened and what to do next, and keeps its cause.

export class MeshError extends Error {
  constructor(
    readonly code: string,
    message: string,
    options?: {cause?: unknown; hints?: string[]},
  ) {
    super(message, options?.cause === undefined ? undefined : {cause: options.cause})
    this.name = 'MeshError'
    this.hints = options?.hints ?? []
  }

  readonly hints: string[]
}

/** Exit codes are part of the CLI contract (documented in README). */
export const ExitCode = {
  ok: 0,
  failure: 1,
  badInput: 2,
  notRunning: 3,
  rolledBack: 4,
} as const

/** The one "unknown service" error: CLI and daemon say it the same way, with the names that do exist. */
export function serviceNotFound(name: string, known: string[], hints: string[] = []): MeshError {
  return new MeshError('MESH_SERVICE_NOT_FOUND', `service "${name}" is not in the mesh${suggestion(name, known) || '.'}`, {
    hints: [`Known services: ${known.join(', ') || 'none'}`, ...hints],
  })
}
