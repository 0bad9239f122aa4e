// Plain aligned columns, as `docker compose ps` and `kubectl get` print them.
// Widths ignore ANSI colour codes so coloured cells still line up.

// eslint-disable-next-line no-control-regex
const ANSI = /\x1b\[[0-9;]*m/g

export function visibleLength(s: string): number {
  return s.replace(ANSI, '').length
}

export function renderTable(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(visibleLength(h), ...rows.map((r) => visibleLength(r[i] ?? ''))))
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c + ' '.repeat(widths[i] - visibleLength(c))))
      .join('  ')
      .trimEnd()
  return [line(header), ...rows.map(line)].join('\n')
}
