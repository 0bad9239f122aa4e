import {readdirSync, statSync} from 'node:fs'
import path from 'node:path'

/** Every .ts file under dir: for tests that hold the docs or the CLI to what the source does. */
export function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const file = path.join(dir, name)
    return statSync(file).isDirectory() ? sourceFiles(file) : file.endsWith('.ts') ? [file] : []
  })
}
