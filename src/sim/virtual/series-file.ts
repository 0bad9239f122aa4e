// `mesh sim --series FILE`: the run's time series, one row per service per step of virtual
// time, for a spreadsheet or a plotting script. CSV unless the name ends in .json; numbers
// rounded as `--json` rounds them, so the file too is the same bytes for the same seed.
import {writeFile} from 'node:fs/promises'
import {extname} from 'node:path'
import {MeshError} from '../errors.js'
import type {SimPoint} from './sim-result.js'
import {roundNumber, stableJson} from './stable-json.js'

export type SeriesFormat = 'csv' | 'json'

const COLUMNS: ReadonlyArray<keyof SimPoint> = ['atMs', 'service', 'rps', 'successRate', 'p99', 'queueDepth']

export function seriesFormatOf(file: string): SeriesFormat {
  return extname(file).toLowerCase() === '.json' ? 'json' : 'csv'
}

/** RFC 4180: a field with a comma, quote or line break is quoted, its quotes doubled. */
function csvField(v: unknown): string {
  const text = typeof v === 'number' ? String(roundNumber(v) ?? '') : String(v ?? '')
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text
}

/** Long form: a header line, then one line per point in the series' order (by step, then service). */
export function seriesCsv(series: readonly SimPoint[]): string {
  // Instances only when a service scales (its points say them; the others' cells are empty).
  const columns = series.some((p) => p.instances !== undefined) ? [...COLUMNS, 'instances' as const] : COLUMNS
  const lines = [columns.join(',')]
  for (const p of series) lines.push(columns.map((k) => csvField(p[k])).join(','))
  return `${lines.join('\n')}\n`
}

export function renderSeries(series: readonly SimPoint[], format: SeriesFormat): string {
  return format === 'json' ? stableJson(series) : seriesCsv(series)
}

export async function writeSeries(file: string, series: readonly SimPoint[]): Promise<void> {
  try {
    await writeFile(file, renderSeries(series, seriesFormatOf(file)))
  } catch (error) {
    throw new MeshError('MESH_BAD_FLAG', `--series ${file}: cannot write it: ${(error as Error).message}`, {
      cause: error,
      hints: ['Give a path in a directory that exists and you can write to, e.g. --series series.csv'],
    })
  }
}
