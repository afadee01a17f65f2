// Turn a topic report (GET /reports/topics) into chart series: the biggest topics, the rest as "other".
import type { ReportTopicRow, TopicReport } from '../api'

export interface ChartSeries {
  key: string
  label: string
  colour: string
  values: number[]
}

export interface ChartData {
  buckets: string[]
  series: ChartSeries[]
}

export const MAX_SERIES = 8

/**
 * Stack the top-level topics only: a subtopic's conversations also count for its parent, so stacking both
 * would count them twice.
 */
export function toChartData(report: TopicReport | null | undefined, otherLabel = 'Other'): ChartData {
  if (!report || !report.buckets?.length) return { buckets: [], series: [] }
  const rows = [...(report.topics ?? [])]
    .filter((row) => row.parent_id === null && row.total > 0)
    .sort((a, b) => b.total - a.total)
  const shown = rows.slice(0, MAX_SERIES)
  const series: ChartSeries[] = shown.map((row) => ({
    key: String(row.id ?? 'none'),
    label: row.name,
    colour: row.colour,
    values: row.counts,
  }))
  const rest = rows.slice(MAX_SERIES)
  if (rest.length) {
    series.push({
      key: 'other',
      label: otherLabel,
      colour: '#9ca3af',
      values: report.buckets.map((_, index) => rest.reduce((sum, row) => sum + (row.counts[index] ?? 0), 0)),
    })
  }
  return { buckets: report.buckets, series }
}

/** A localised duration such as "1 h 5 min" or "3 min" (Intl units, no Intl.DurationFormat needed). */
export function humanDuration(seconds: number | null | undefined, locale: string): string {
  if (seconds === null || seconds === undefined) return '—'
  const unit = (value: number, name: 'day' | 'hour' | 'minute' | 'second') =>
    new Intl.NumberFormat(locale, { style: 'unit', unit: name, unitDisplay: 'narrow' }).format(value)
  const s = Math.round(seconds)
  if (s < 60) return unit(s, 'second')
  const minutes = Math.round(s / 60)
  if (minutes < 60) return unit(minutes, 'minute')
  const hours = Math.floor(minutes / 60)
  if (hours < 48) return `${unit(hours, 'hour')} ${unit(minutes % 60, 'minute')}`
  return `${unit(Math.floor(hours / 24), 'day')} ${unit(hours % 24, 'hour')}`
}

/** Table order: top-level topics by volume, each followed by its subtopics (also by volume). */
export function topicTableRows(report: TopicReport | null | undefined): (ReportTopicRow & { depth: number })[] {
  const rows = (report?.topics ?? []).filter((row) => row.total > 0 || row.previous_total > 0)
  const byVolume = (a: ReportTopicRow, b: ReportTopicRow) => b.total - a.total || a.name.localeCompare(b.name)
  const parents = rows.filter((row) => row.parent_id === null).sort(byVolume)
  const known = new Set(parents.map((row) => row.id))
  const result: (ReportTopicRow & { depth: number })[] = []
  for (const parent of parents) {
    result.push({ ...parent, depth: 0 })
    const children = rows.filter((row) => row.parent_id !== null && row.parent_id === parent.id).sort(byVolume)
    for (const child of children) result.push({ ...child, depth: 1 })
  }
  // Subtopics whose parent had no conversations in either period still show, at the end.
  for (const orphan of rows.filter((row) => row.parent_id !== null && !known.has(row.parent_id)).sort(byVolume)) {
    result.push({ ...orphan, depth: 1 })
  }
  return result
}
