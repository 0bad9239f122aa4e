// What an import could not carry over, or carried with another meaning: said out loud, one
// entry per source field, pointing at where it was written (the same file:line:column as a
// mesh.yaml error), never silently dropped.
import {formatIssue} from '../config/config-error.js'

export interface Loss {
  /** The source file (absolute), 1-based line and column of the field. */
  file: string
  line: number
  column: number
  /** The field in the source, e.g. services.db.volumes */
  path: string
  /** `dropped`: nothing in mesh.yaml says it; `changed`: carried over with a different meaning, or a guess. */
  kind: 'dropped' | 'changed'
  /** Why, and the nearest thing mesh.yaml has or what to do instead. */
  reason: string
}

/** 'compose.yaml:12:5 services.db.volumes: not carried over: …' (file relative to cwd), as mesh.yaml's issues read. */
export function formatLoss(loss: Loss, cwd?: string): string {
  const what = loss.kind === 'dropped' ? 'not carried over' : 'changed'
  return formatIssue({file: loss.file, line: loss.line, column: loss.column, path: loss.path, message: `${what}: ${loss.reason}`, severity: 'error'}, cwd)
}
