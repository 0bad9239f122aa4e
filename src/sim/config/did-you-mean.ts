// "Did you mean ...?" for misspelt keys, services and versions: the closest known
// word by edit distance (a swap of two letters counts as one edit), if close enough.

/** The candidate closest to `word`, or undefined when none is plausibly what was meant. */
export function didYouMean(word: string, candidates: Iterable<string>): string | undefined {
  const lower = word.toLowerCase()
  let best: string | undefined
  let bestDistance = Infinity
  for (const candidate of candidates) {
    if (candidate === word) continue
    const other = candidate.toLowerCase()
    // Case slips ('dependson') and truncations ('consecutive5xx' for 'consecutive5xxErrors') count as one edit.
    const prefix = Math.min(lower.length, other.length) >= 4 && (other.startsWith(lower) || lower.startsWith(other))
    const d = other === lower ? 0.5 : prefix ? 1 : distance(lower, other)
    if (d < bestDistance) {
      best = candidate
      bestDistance = d
    }
  }
  // A third of the word may be wrong, at least one letter: 'replica' → 'replicas', not 'cwd' → 'env'.
  const limit = Math.max(1, Math.floor(word.length / 3))
  return bestDistance <= limit ? best : undefined
}

/** '; did you mean "replicas"?' or '' — ready to append to a message. */
export function suggestion(word: string, candidates: Iterable<string>): string {
  const best = didYouMean(word, candidates)
  return best === undefined ? '' : `; did you mean "${best}"?`
}

/** Optimal string alignment distance (Damerau-Levenshtein without repeated edits of a substring). */
export function distance(a: string, b: string): number {
  const rows = a.length + 1
  const cols = b.length + 1
  const d: number[][] = Array.from({length: rows}, (_, i) => Array.from({length: cols}, (_, j) => (i === 0 ? j : j === 0 ? i : 0)))
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1)
    }
  }
  return d[a.length][b.length]
}
