// Formatting helpers that need no component: durations, file sizes, names, relative times.
// Intl formatters are costly to build (tenths of a millisecond each) and rows format dates on every
// render while the agent scrolls, so each locale/options pair is built once and reused.

const dateFormats = new Map<string, Intl.DateTimeFormat>()

export function dateFormat(locale: string, options: Intl.DateTimeFormatOptions): Intl.DateTimeFormat {
  const key = `${locale}|${JSON.stringify(options)}`
  let format = dateFormats.get(key)
  if (!format) {
    format = new Intl.DateTimeFormat(locale, options)
    dateFormats.set(key, format)
  }
  return format
}

const TIME: Intl.DateTimeFormatOptions = { hour: '2-digit', minute: '2-digit' }
const DAY: Intl.DateTimeFormatOptions = { day: 'numeric', month: 'short' }
const FULL: Intl.DateTimeFormatOptions = { dateStyle: 'medium', timeStyle: 'short' }

/** "1:05" or "1:02:03" for a call duration in seconds. */
export function formatDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return '–'
  const total = Math.max(0, Math.round(seconds))
  const h = Math.floor(total / 3600)
  const m = Math.floor((total % 3600) / 60)
  const s = total % 60
  const ss = String(s).padStart(2, '0')
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`
}

export function formatBytes(bytes: number, locale: string): string {
  const units = ['byte', 'kilobyte', 'megabyte', 'gigabyte'] as const
  let value = bytes
  let unit = 0
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024
    unit += 1
  }
  return new Intl.NumberFormat(locale, {
    style: 'unit',
    unit: units[unit],
    unitDisplay: 'short',
    maximumFractionDigits: unit === 0 ? 0 : 1,
  }).format(value)
}

export function firstName(name: string | null | undefined): string {
  return (name ?? '').trim().split(/\s+/)[0] ?? ''
}

export function initials(name: string | null | undefined): string {
  const parts = (name ?? '').trim().split(/\s+/).filter(Boolean)
  if (parts.length === 0) return '?'
  return ((parts[0][0] ?? '') + (parts.length > 1 ? parts[parts.length - 1][0] : '')).toUpperCase()
}

const DIVISIONS: [number, Intl.RelativeTimeFormatUnit][] = [
  [60, 'second'],
  [60, 'minute'],
  [24, 'hour'],
  [7, 'day'],
  [4.34524, 'week'],
  [12, 'month'],
  [Number.POSITIVE_INFINITY, 'year'],
]

/** "5 min ago" / "5 min temu", localised by Intl. */
export function relativeTime(iso: string | null | undefined, locale: string, now: number = Date.now()): string {
  if (!iso) return ''
  let duration = (Date.parse(iso) - now) / 1000
  const format = new Intl.RelativeTimeFormat(locale, { numeric: 'auto', style: 'short' })
  for (const [amount, unit] of DIVISIONS) {
    if (Math.abs(duration) < amount) return format.format(Math.round(duration), unit)
    duration /= amount
  }
  return ''
}

/** Time of day today, the date otherwise: what an inbox row shows. */
export function shortStamp(iso: string | null | undefined, locale: string, now: Date = new Date()): string {
  if (!iso) return ''
  const date = new Date(iso)
  const sameDay =
    date.getFullYear() === now.getFullYear() && date.getMonth() === now.getMonth() && date.getDate() === now.getDate()
  return dateFormat(locale, sameDay ? TIME : DAY).format(date)
}

export function fullStamp(iso: string | null | undefined, locale: string): string {
  if (!iso) return ''
  return dateFormat(locale, FULL).format(new Date(iso))
}
