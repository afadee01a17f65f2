// Email bodies: sanitise (again — the server already did, but the console never trusts stored HTML),
// block remote images until the agent asks for them, and fold the quoted history of earlier replies.
import DOMPurify from 'dompurify'

export interface EmailRenderOptions {
  showImages: boolean
  /** Inline attachments by Content-ID, so cid: images show without loading anything remote. */
  inlineImages?: Record<string, string>
}

export interface RenderedEmail {
  html: string
  quoted: string | null
  blockedImages: number
}

// Markers mail clients put before the quoted earlier message: Gmail, Apple Mail/Thunderbird, Outlook, Yahoo.
const QUOTE_MARKERS = [
  '.gmail_quote',
  'blockquote[type="cite"]',
  '.moz-cite-prefix',
  '#divRplyFwdMsg',
  '#appendonsend',
  '.yahoo_quoted',
  'div[style*="border-top:solid #E1E1E1"]',
  'blockquote',
]

const REMOTE = /^(https?:)?\/\//i
const CSS_URL = /url\(\s*(['"]?)(?!data:)[^)]*\1\s*\)/gi

let current: { options: EmailRenderOptions; blocked: number } | null = null

DOMPurify.addHook('afterSanitizeAttributes', (node) => {
  if (!current) return
  const element = node as Element
  if (element.tagName === 'A') {
    element.setAttribute('target', '_blank')
    element.setAttribute('rel', 'noopener noreferrer nofollow')
  }
  if (element.tagName === 'IMG') {
    const src = element.getAttribute('src') ?? ''
    element.removeAttribute('srcset')
    if (src.toLowerCase().startsWith('cid:')) {
      const url = current.options.inlineImages?.[src.slice(4).replace(/^<|>$/g, '')]
      if (url) element.setAttribute('src', url)
      else element.removeAttribute('src')
    } else if (REMOTE.test(src) && !current.options.showImages) {
      element.setAttribute('data-blocked-src', src)
      element.removeAttribute('src')
      element.classList.add('blocked-image')
      current.blocked += 1
    }
  }
  if (!current.options.showImages) {
    if (element.hasAttribute('background')) {
      element.removeAttribute('background')
      current.blocked += 1
    }
    const style = element.getAttribute('style')
    if (style && CSS_URL.test(style)) {
      CSS_URL.lastIndex = 0
      element.setAttribute('style', style.replace(CSS_URL, 'none'))
      current.blocked += 1
    }
    CSS_URL.lastIndex = 0
  }
})

export function sanitizeEmail(html: string, options: EmailRenderOptions): { html: string; blocked: number } {
  current = { options, blocked: 0 }
  try {
    const clean = DOMPurify.sanitize(html, {
      FORBID_TAGS: ['style', 'form', 'input', 'button', 'textarea', 'select', 'option', 'link', 'meta', 'base'],
      FORBID_ATTR: ['autofocus', 'tabindex'],
      ALLOW_DATA_ATTR: false,
      ADD_ATTR: ['target'],
    })
    return { html: clean, blocked: current.blocked }
  } finally {
    current = null
  }
}

function textContentOf(nodes: Node[]): string {
  return nodes.map((node) => node.textContent ?? '').join('').trim()
}

/** Split sanitised HTML into the new part and the quoted history that follows the first quote marker. */
export function splitQuotedHtml(html: string): { main: string; quoted: string | null } {
  const template = document.createElement('template')
  template.innerHTML = html
  const root = template.content
  let marker: Element | null = null
  for (const selector of QUOTE_MARKERS) {
    marker = root.querySelector(selector)
    if (marker) break
  }
  if (!marker) return { main: html, quoted: null }

  // Everything from the marker to the end of the document is history: the marker, its later siblings,
  // and the later siblings of each ancestor.
  const moved: Node[] = []
  let node: Node | null = marker
  while (node && node !== root) {
    let sibling: Node | null = node.nextSibling
    if (node === marker) moved.push(node)
    while (sibling) {
      moved.push(sibling)
      sibling = sibling.nextSibling
    }
    node = node.parentNode
  }
  const quoted = document.createElement('div')
  for (const item of moved) quoted.appendChild(item)
  const main = document.createElement('div')
  main.appendChild(root)
  // A message that is nothing but a quote (a bare forward) shows whole.
  if (!textContentOf([main]) && !main.querySelector('img')) return { main: html, quoted: null }
  return { main: main.innerHTML, quoted: quoted.innerHTML }
}

export function renderEmailHtml(html: string, options: EmailRenderOptions): RenderedEmail {
  const { html: clean, blocked } = sanitizeEmail(html, options)
  const { main, quoted } = splitQuotedHtml(clean)
  return { html: main, quoted, blockedImages: blocked }
}

const ATTRIBUTION = [
  /^On .+ wrote:\s*$/,
  /^W dniu .+ pisze:\s*$/,
  /^Am .+ schrieb .+:\s*$/,
  /^-{2,}\s*(Original Message|Wiadomość oryginalna|Ursprüngliche Nachricht)\s*-{2,}\s*$/i,
  /^From: .+$/,
  /^Od: .+$/,
]

/** Split a plain-text body at the attribution line or the first run of "> " lines that ends the message. */
export function splitQuotedText(text: string): { main: string; quoted: string | null } {
  const lines = text.split(/\r?\n/)
  for (let index = 1; index < lines.length; index += 1) {
    const line = lines[index]
    const isAttribution = ATTRIBUTION.some((pattern) => pattern.test(line.trim()))
    const restIsQuote =
      line.startsWith('>') && lines.slice(index).every((rest) => rest.startsWith('>') || rest.trim() === '')
    if (isAttribution || restIsQuote) {
      const head = lines.slice(0, index)
      // Only fold when something new was written above the quote.
      const wroteSomething = head.some(
        (rest) => rest.trim() !== '' && !rest.startsWith('>') && !ATTRIBUTION.some((pattern) => pattern.test(rest.trim())),
      )
      if (!wroteSomething) break
      return { main: head.join('\n').trimEnd(), quoted: lines.slice(index).join('\n') }
    }
  }
  return { main: text, quoted: null }
}
