// Files of this repository that tests hold to one another: the source, and the pages a
// reader is pointed to.
import {readdirSync, statSync} from 'node:fs'
import path from 'node:path'
import {ROOT} from './mesh.js'

/** Every .ts file under dir: for tests that hold the docs or the CLI to what the source does. */
export function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const file = path.join(dir, name)
    return statSync(file).isDirectory() ? sourceFiles(file) : file.endsWith('.ts') ? [file] : []
  })
}

/** README.md and docs/*.md, relative to the root (docs/pending/ holds drafts, not pages). */
export function docPages(): string[] {
  return ['README.md', ...readdirSync(path.join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)]
}
