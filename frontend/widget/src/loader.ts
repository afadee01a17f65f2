// widget.js: the script a shop pastes into its pages.
//   <script src="https://HOST/widget.js" data-channel="ID" async></script>
// Optional: data-user-id + data-user-hash (HMAC-SHA256 of the user id under the channel's secret, computed on
// the shop's server), data-locale ("en" | "pl"), data-color ("#2563eb"); or window.SwitchboardSettings =
// {userId, userHash, locale, color} set before the script runs.
//
// It draws a launcher button and loads nothing else until the visitor clicks it, or until this page already
// has a conversation going (a flag in the page's own storage, set when the chat starts). The chat itself runs
// in an iframe served by Switchboard, so the page's CSS and cookies and the chat's never mix. Styles are set
// through the CSSOM (element.style), which a strict Content-Security-Policy on the page still allows.

interface Settings {
  userId?: string
  userHash?: string
  locale?: string
  color?: string
}

interface FrameMessage {
  type?: unknown
  count?: unknown
  active?: unknown
  color?: unknown
  label?: unknown
}

interface Api {
  open(): void
  close(): void
  toggle(): void
}

declare global {
  interface Window {
    SwitchboardSettings?: Settings
    Switchboard?: Api
  }
}

const FONT = 'font:600 13px/20px system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;'

function svg(path: string): SVGSVGElement {
  const ns = 'http://www.w3.org/2000/svg'
  const icon = document.createElementNS(ns, 'svg')
  icon.setAttribute('viewBox', '0 0 24 24')
  icon.setAttribute('width', '28')
  icon.setAttribute('height', '28')
  icon.setAttribute('aria-hidden', 'true')
  const shape = document.createElementNS(ns, 'path')
  shape.setAttribute('d', path)
  shape.setAttribute('fill', 'currentColor')
  icon.appendChild(shape)
  return icon
}

const CHAT = 'M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z'
const CLOSE = 'M6.4 5L12 10.6 17.6 5 19 6.4 13.4 12 19 17.6 17.6 19 12 13.4 6.4 19 5 17.6 10.6 12 5 6.4z'

function start(script: HTMLScriptElement): void {
  const data = script.dataset
  const channel = data.channel || ''
  if (!/^\d+$/.test(channel)) {
    console.warn('Switchboard chat: add data-channel="ID" to the script tag')
    return
  }
  const base = new URL(script.src, location.href).origin
  const settings: Settings = window.SwitchboardSettings || {}
  const userId = data.userId || settings.userId
  const userHash = data.userHash || settings.userHash
  const locale = data.locale || settings.locale || document.documentElement.lang || navigator.language
  let color = data.color || settings.color || '#2563eb'
  const flag = 'switchboard-chat-' + channel
  const mobile = () => window.innerWidth < 480

  const launcher = document.createElement('button')
  launcher.type = 'button'
  launcher.setAttribute('aria-label', /^pl\b/i.test(locale) ? 'Otwórz czat' : 'Open chat')
  launcher.setAttribute('aria-expanded', 'false')
  const paint = () => {
    launcher.style.cssText =
      'position:fixed;right:20px;bottom:20px;z-index:2147483000;width:56px;height:56px;border:0;border-radius:50%;' +
      'padding:0;margin:0;cursor:pointer;display:flex;align-items:center;justify-content:center;color:#fff;' +
      'box-shadow:0 4px 14px rgba(0,0,0,.25);background:' +
      color
  }
  paint()
  const chatIcon = svg(CHAT)
  const closeIcon = svg(CLOSE)
  closeIcon.style.display = 'none'
  const badge = document.createElement('span')
  badge.style.cssText =
    FONT +
    'position:absolute;top:-4px;right:-4px;min-width:20px;height:20px;padding:0 5px;box-sizing:border-box;' +
    'border-radius:10px;background:#dc2626;color:#fff;text-align:center;display:none'
  launcher.append(chatIcon, closeIcon, badge)

  let frame: HTMLIFrameElement | null = null
  let open = false

  const post = (message: Record<string, unknown>) => frame?.contentWindow?.postMessage(message, base)

  const place = () => {
    if (!frame) return
    frame.style.cssText = mobile()
      ? 'position:fixed;inset:0;width:100%;height:100%;border:0;z-index:2147483001;background:#fff;'
      : 'position:fixed;right:20px;bottom:88px;width:380px;height:min(600px,calc(100vh - 110px));border:0;' +
        'border-radius:12px;z-index:2147483001;background:#fff;box-shadow:0 8px 30px rgba(0,0,0,.25);'
    frame.style.display = open ? 'block' : 'none'
  }

  const ensureFrame = () => {
    if (frame) return
    frame = document.createElement('iframe')
    frame.title = /^pl\b/i.test(locale) ? 'Czat' : 'Chat'
    frame.setAttribute('allow', 'autoplay')
    frame.src = base + '/widget/?channel=' + channel
    place()
    document.body.appendChild(frame)
  }

  const setOpen = (value: boolean) => {
    open = value
    ensureFrame()
    place()
    launcher.setAttribute('aria-expanded', String(open))
    chatIcon.style.display = open ? 'none' : ''
    closeIcon.style.display = open ? '' : 'none'
    if (open && mobile()) launcher.style.display = 'none'
    post({ type: 'sb:open', open })
  }

  window.addEventListener('message', (event: MessageEvent<FrameMessage>) => {
    // Only our own iframe speaks to us.
    if (event.origin !== base || !frame || event.source !== frame.contentWindow) return
    const message = event.data || {}
    switch (message.type) {
      case 'sb:ready':
        // The iframe learns this page's origin from this event (event.origin), which no page can fake.
        post({ type: 'sb:init', channel, userId, userHash, locale, open })
        break
      case 'sb:close':
        setOpen(false)
        launcher.style.display = 'flex'
        launcher.focus()
        break
      case 'sb:unread': {
        const count = Number(message.count) || 0
        badge.textContent = count > 9 ? '9+' : String(count)
        badge.style.display = count > 0 && !open ? 'block' : 'none'
        break
      }
      case 'sb:conversation':
        try {
          if (message.active) localStorage.setItem(flag, '1')
          else localStorage.removeItem(flag)
        } catch {
          // storage blocked: the launcher still works, it just loads the chat on click
        }
        break
      case 'sb:theme':
        if (typeof message.color === 'string' && /^#[0-9a-f]{6}$/i.test(message.color)) {
          color = message.color
          paint()
          launcher.style.display = open && mobile() ? 'none' : 'flex'
        }
        break
      case 'sb:refused':
        // This site is not on the channel's allow-list: take everything away again.
        launcher.remove()
        frame.remove()
        frame = null
        break
    }
  })

  launcher.addEventListener('click', () => setOpen(!open))
  window.addEventListener('resize', place)

  const mount = () => {
    document.body.appendChild(launcher)
    let active = false
    try {
      active = localStorage.getItem(flag) === '1'
    } catch {
      active = false
    }
    // A conversation is going on: load the chat now (hidden) so replies ring and the badge counts.
    if (active) ensureFrame()
  }
  if (document.body) mount()
  else document.addEventListener('DOMContentLoaded', mount)

  window.Switchboard = {
    open: () => setOpen(true),
    close: () => setOpen(false),
    toggle: () => setOpen(!open),
  }
}

const current = document.currentScript
if (current instanceof HTMLScriptElement && !window.Switchboard) start(current)

export {}
