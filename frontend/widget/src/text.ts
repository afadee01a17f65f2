// Turning message text into DOM nodes: always text nodes, never HTML; http(s) links become anchors.

const URL_RE = /\bhttps?:\/\/[^\s<>"']+[^\s<>"'.,;:!?)\]}]/gi

/** Append ``text`` to ``parent`` as text nodes, with safe links for http(s) URLs. */
export function appendText(parent: HTMLElement, text: string): void {
  let last = 0
  for (const match of text.matchAll(URL_RE)) {
    const index = match.index ?? 0
    if (index > last) parent.appendChild(document.createTextNode(text.slice(last, index)))
    const link = document.createElement('a')
    link.href = match[0]
    link.textContent = match[0]
    link.target = '_blank'
    link.rel = 'noopener noreferrer nofollow'
    parent.appendChild(link)
    last = index + match[0].length
  }
  if (last < text.length) parent.appendChild(document.createTextNode(text.slice(last)))
}

// The raster images the server sends inline (app/api/attachments.py INLINE_TYPES); anything else, an agent's
// PDF or an SVG alike, comes as a download and is offered as one.
const INLINE_IMAGES = new Set(['image/png', 'image/jpeg', 'image/gif', 'image/webp'])

export function showsInline(contentType: string): boolean {
  return INLINE_IMAGES.has(contentType.toLowerCase())
}

export function formatSize(bytes: number): string {
  if (bytes >= 1024 * 1024) return `${(bytes / 1024 / 1024).toFixed(1).replace(/\.0$/, '')} MB`
  if (bytes >= 1024) return `${Math.round(bytes / 1024)} KB`
  return `${bytes} B`
}

export function formatTime(iso: string | null | undefined, locale: string): string {
  if (!iso) return ''
  const date = new Date(iso)
  if (Number.isNaN(date.getTime())) return ''
  return date.toLocaleTimeString(locale, { hour: '2-digit', minute: '2-digit' })
}

/** A random client message id: retries after a reconnect reuse it, so the server stores the message once. */
export function clientId(): string {
  const bytes = new Uint8Array(16)
  crypto.getRandomValues(bytes)
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')
}

export function validEmail(value: string): boolean {
  return /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(value.trim())
}
