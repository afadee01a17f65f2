// The chat widget's iframe app. It runs on Switchboard's origin inside the shop's page:
// 1. tells the loader it is ready and learns the page's origin from the loader's reply (event.origin);
// 2. starts or restores the visitor session: the token lives in this iframe's storage, never the page's
//    (localStorage where the browser allows it to a third-party frame, else a partitioned cookie the server sets);
// 3. shows the history, the pre-chat form when configured, and an offline notice asking for an email;
// 4. talks over Socket.IO /widget: messages carry a client id and stay queued until the server acknowledges
//    them after commit, so a retry after a reconnect never duplicates one.
// Every text is put into the page as text nodes (see text.ts): nothing a visitor or agent types is HTML.
import { io, type Socket } from 'socket.io-client'
import { MESSAGE_CREATED, MESSAGE_UPDATED, TYPING, WIDGET_NAMESPACE } from '@shared/events'
import { Api, HttpError, type FieldDef, type Session, type Status, type WidgetMessage } from './api'
import { configured, pickLocale, translator, type Locale, type TextKey, type Translate } from './i18n'
import { chime } from './sound'
import { appendText, clientId, formatSize, formatTime, showsInline, validEmail } from './text'
import './style.css'

interface Entry {
  key: string
  id: number | null
  clientId: string | null
  direction: 'in' | 'out'
  text: string
  createdAt: string | null
  state: 'pending' | 'sent' | 'failed'
  readAt: string | null
  authorName: string | null
  attachments: WidgetMessage['attachments']
  localFiles: string[]
  seq: number
}

interface Outgoing {
  client_id: string
  text: string
  attachments: string[]
  files: string[]
}

interface Ack {
  ok: boolean
  message?: WidgetMessage
  conversation_id?: number
  error?: { code: string; message: string; retry?: boolean }
}

const channelId = Number(new URLSearchParams(location.search).get('channel'))

const storage = {
  get(name: string): string | null {
    try {
      return localStorage.getItem(`sb-${name}-${channelId}`)
    } catch {
      return null
    }
  },
  set(name: string, value: string | null): void {
    try {
      if (value === null) localStorage.removeItem(`sb-${name}-${channelId}`)
      else localStorage.setItem(`sb-${name}-${channelId}`, value)
    } catch {
      // storage blocked (private mode, partitioning off): the chat still works for this page view
    }
  },
}

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className = '',
  text?: string,
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag)
  if (className) node.className = className
  if (text !== undefined) node.textContent = text
  return node
}

class ChatApp {
  api = new Api()
  host = ''
  locale: Locale = 'en'
  t: Translate = translator('en')
  init: { userId?: string; userHash?: string; locale?: string } = {}
  session: Session | null = null
  status: Status = { open: true, online: false, agent: null }
  entries = new Map<string, Entry>()
  outbox: Outgoing[] = []
  socket: Socket | null = null
  conversationId: number | null = null
  open = false
  unread = 0
  seq = 0
  muted = storage.get('muted') === '1'
  lastReadSent = 0
  hasMore = false
  blobs = new Map<number, Promise<string>>()
  typingSentAt = 0
  typingStop = 0
  agentTypingTimer = 0
  renewedToken = false
  savedEmail = ''
  noticeKey = ''

  // The DOM, built once.
  root = document.getElementById('sb-root') as HTMLElement
  header = el('header', 'sb-header')
  title = el('h1', 'sb-title')
  presence = el('div', 'sb-presence')
  dot = el('span', 'sb-dot')
  presenceText = el('span')
  muteButton = el('button', 'sb-icon')
  closeButton = el('button', 'sb-icon')
  notice = el('div', 'sb-notice')
  body = el('div', 'sb-body')
  earlier = el('button', 'sb-earlier')
  list = el('ol', 'sb-list')
  typing = el('div', 'sb-typing')
  prechat = el('form', 'sb-prechat')
  composer = el('form', 'sb-composer')
  input = el('textarea', 'sb-input')
  fileInput = el('input')
  attachButton = el('button', 'sb-icon sb-attach')
  sendButton = el('button', 'sb-send')
  info = el('div', 'sb-info')

  boot(): void {
    this.build()
    window.addEventListener('message', (event) => this.onParentMessage(event))
    document.addEventListener('visibilitychange', () => this.markSeen())
    // The page's origin is not known yet, and "ready" carries nothing, so any target is fine.
    window.parent.postMessage({ type: 'sb:ready' }, '*')
  }

  private parent(message: Record<string, unknown>): void {
    if (this.host) window.parent.postMessage(message, this.host)
  }

  private onParentMessage(event: MessageEvent): void {
    if (event.source !== window.parent || !event.data || typeof event.data !== 'object') return
    const data = event.data as Record<string, unknown>
    if (data.type === 'sb:init' && !this.host) {
      this.host = event.origin
      this.init = {
        userId: typeof data.userId === 'string' ? data.userId : undefined,
        userHash: typeof data.userHash === 'string' ? data.userHash : undefined,
        locale: typeof data.locale === 'string' ? data.locale : undefined,
      }
      this.setOpen(data.open === true)
      void this.start()
    } else if (data.type === 'sb:open' && event.origin === this.host) {
      this.setOpen(data.open === true)
    }
  }

  private setOpen(open: boolean): void {
    this.open = open
    if (open) {
      this.markSeen()
      setTimeout(() => this.input.focus(), 0)
    }
  }

  // --- session ------------------------------------------------------------------------------------------

  private async start(): Promise<void> {
    this.applyLocale(pickLocale(this.init.locale, navigator.language))
    this.outbox = this.loadOutbox()
    try {
      await this.openSession({})
    } catch (error) {
      this.fail(error)
      return
    }
    const session = this.session as Session
    const color = session.config.color
    if (color) {
      document.documentElement.style.setProperty('--sb-accent', color)
      this.parent({ type: 'sb:theme', color })
    }
    this.applyLocale(pickLocale(this.init.locale, session.config.locale, navigator.language))
    this.setStatus(session.status)
    if (session.conversation_id) {
      this.conversationId = session.conversation_id
      this.parent({ type: 'sb:conversation', active: true })
      await this.loadHistory()
    }
    for (const item of this.outbox) this.addPending(item)
    this.showPrechat(this.needsPrechat())
    this.render()
    this.connect()
  }

  private async openSession(extra: { name?: string; email?: string; fields?: Record<string, string> }): Promise<void> {
    const request = {
      channel_id: channelId,
      host: this.host,
      token: storage.get('token'),
      ...(this.init.userId ? { user_id: this.init.userId, user_hash: this.init.userHash ?? '' } : {}),
      ...extra,
    }
    const session = await this.api.session(request)
    if (this.session && this.session.token !== session.token) {
      // Another person (a login or logout on the shop): start from a clean slate.
      this.entries.clear()
      this.outbox = []
      this.saveOutbox()
      this.conversationId = null
    }
    this.session = session
    this.api.token = session.token
    storage.set('token', session.token)
  }

  private fail(error: unknown): void {
    const code = error instanceof HttpError ? error.code : ''
    if (code === 'origin_not_allowed') {
      this.parent({ type: 'sb:refused' })
      this.showInfo(this.t('refused'))
    } else {
      this.showInfo(this.t('error'))
    }
    this.composer.hidden = true
  }

  private needsPrechat(): boolean {
    const session = this.session
    if (!session || session.conversation_id || this.outbox.length) return false
    if (session.visitor.prechat_done || storage.get('prechat') === '1') return false
    return session.config.prechat_fields.length > 0
  }

  private async loadHistory(before?: number): Promise<void> {
    const page = await this.api.history(before)
    for (const message of page.items) this.upsert(message, false)
    this.hasMore = page.has_more
    if (page.conversation_id) this.conversationId = page.conversation_id
  }

  // --- socket -------------------------------------------------------------------------------------------

  private connect(): void {
    const session = this.session as Session
    const socket = io(WIDGET_NAMESPACE, {
      auth: (cb) => cb({ channel_id: channelId, token: session.token, host: this.host }),
      transports: ['websocket', 'polling'],
      reconnectionDelayMax: 10000,
    })
    this.socket = socket
    let connectedBefore = false
    socket.on('connect', () => {
      this.showInfo('')
      if (connectedBefore) void this.resync()
      connectedBefore = true
      this.refreshStatus()
      this.flush()
      this.markSeen()
    })
    socket.on('disconnect', () => this.showInfo(this.t('reconnecting')))
    socket.on('connect_error', (error: Error & { data?: { code?: string } }) => {
      const code = error.data?.code
      if (code === 'origin_not_allowed') {
        socket.disconnect()
        this.fail(new HttpError(403, code, error.message))
      } else if (code === 'bad_token' && !this.renewedToken) {
        this.renewedToken = true
        socket.disconnect()
        storage.set('token', null)
        void this.openSession({}).then(() => this.connect(), (e) => this.fail(e))
      }
    })
    socket.on(MESSAGE_CREATED, (payload: { message?: WidgetMessage }) => {
      if (payload?.message) this.upsert(payload.message, true)
      this.render()
    })
    socket.on(MESSAGE_UPDATED, (payload: { message?: WidgetMessage }) => {
      if (payload?.message) this.upsert(payload.message, false)
      this.render()
    })
    socket.on(TYPING, (payload: { typing?: boolean; author_name?: string | null }) => {
      this.showAgentTyping(Boolean(payload?.typing), payload?.author_name ?? null)
    })
    socket.on('messages.read', (payload: { up_to?: number; at?: string }) => {
      for (const entry of this.entries.values()) {
        if (entry.direction === 'in' && entry.id !== null && entry.id <= (payload?.up_to ?? 0) && !entry.readAt) {
          entry.readAt = payload.at ?? new Date().toISOString()
        }
      }
      this.render()
    })
    window.setInterval(() => this.refreshStatus(), 60000)
  }

  private async resync(): Promise<void> {
    try {
      await this.loadHistory()
      this.render()
    } catch {
      // the next reconnect tries again
    }
  }

  private refreshStatus(): void {
    this.socket?.timeout(10000).emit('status', {}, (error: Error | null, status: Status & { ok: boolean }) => {
      if (!error && status?.ok) this.setStatus(status)
    })
  }

  private flush(): void {
    for (const item of [...this.outbox]) this.deliver(item)
  }

  private deliver(item: Outgoing): void {
    const socket = this.socket
    if (!socket?.connected) return // sent again on (re)connect
    const payload = { client_id: item.client_id, text: item.text, attachments: item.attachments }
    socket.timeout(15000).emit('message', payload, (error: Error | null, ack: Ack) => {
      const entry = this.entries.get(item.client_id)
      if (error) {
        // No answer: the message may or may not be stored. Retrying with the same client id is safe.
        window.setTimeout(() => this.deliver(item), 3000)
        return
      }
      if (ack?.ok && ack.message) {
        this.outbox = this.outbox.filter((other) => other.client_id !== item.client_id)
        this.saveOutbox()
        this.upsert(ack.message, false)
        if (ack.conversation_id && ack.conversation_id !== this.conversationId) {
          this.conversationId = ack.conversation_id
          this.parent({ type: 'sb:conversation', active: true })
        }
      } else if (ack?.error?.retry) {
        window.setTimeout(() => this.deliver(item), 5000)
      } else {
        this.outbox = this.outbox.filter((other) => other.client_id !== item.client_id)
        this.saveOutbox()
        if (entry) entry.state = 'failed'
        this.showInfo(ack?.error?.message ?? this.t('error'))
      }
      this.render()
    })
  }

  private loadOutbox(): Outgoing[] {
    try {
      const saved = JSON.parse(storage.get('outbox') || '[]')
      return Array.isArray(saved) ? saved.filter((item) => item && typeof item.client_id === 'string') : []
    } catch {
      return []
    }
  }

  private saveOutbox(): void {
    storage.set('outbox', this.outbox.length ? JSON.stringify(this.outbox) : null)
  }

  // --- messages -----------------------------------------------------------------------------------------

  private addPending(item: Outgoing): void {
    this.entries.set(item.client_id, {
      key: item.client_id,
      id: null,
      clientId: item.client_id,
      direction: 'in',
      text: item.text,
      createdAt: new Date().toISOString(),
      state: 'pending',
      readAt: null,
      authorName: null,
      attachments: [],
      localFiles: item.files,
      seq: ++this.seq,
    })
  }

  private upsert(message: WidgetMessage, live: boolean): void {
    const key = message.client_id || `id:${message.id}`
    const existing = this.entries.get(key) ?? this.entries.get(`id:${message.id}`)
    const entry: Entry = {
      key,
      id: message.id,
      clientId: message.client_id,
      direction: message.direction,
      text: message.text ?? '',
      createdAt: message.created_at,
      state: 'sent',
      readAt: message.read_at ?? existing?.readAt ?? null,
      authorName: message.author_name ?? existing?.authorName ?? null,
      attachments: message.attachments ?? [],
      localFiles: [],
      seq: existing?.seq ?? ++this.seq,
    }
    this.entries.set(key, entry)
    if (!existing && live && entry.direction === 'out') this.onAgentMessage(entry)
  }

  private onAgentMessage(entry: Entry): void {
    this.showAgentTyping(false, null)
    if (!entry.authorName && this.status.agent) entry.authorName = this.status.agent.name
    this.refreshStatus()
    if (!this.muted) chime()
    if (!this.open || document.visibilityState !== 'visible') {
      this.unread += 1
      this.parent({ type: 'sb:unread', count: this.unread })
    }
    this.markSeen()
  }

  private markSeen(): void {
    if (!this.open || document.visibilityState !== 'visible') return
    if (this.unread) {
      this.unread = 0
      this.parent({ type: 'sb:unread', count: 0 })
    }
    let latest = 0
    for (const entry of this.entries.values()) {
      if (entry.direction === 'out' && entry.id !== null && entry.id > latest) latest = entry.id
    }
    if (latest > this.lastReadSent && this.socket?.connected) {
      this.lastReadSent = latest
      this.socket.emit('read', { message_id: latest })
    }
  }

  private send(text: string, attachments: string[] = [], files: string[] = []): void {
    const item: Outgoing = { client_id: clientId(), text, attachments, files }
    this.outbox.push(item)
    this.saveOutbox()
    this.addPending(item)
    this.render(true)
    this.deliver(item)
    this.sendTyping(false)
  }

  private sendTyping(typing: boolean): void {
    if (!this.socket?.connected || !this.conversationId) return
    const now = Date.now()
    window.clearTimeout(this.typingStop)
    if (typing) {
      if (now - this.typingSentAt > 3000) {
        this.typingSentAt = now
        this.socket.emit('typing', { typing: true })
      }
      this.typingStop = window.setTimeout(() => this.sendTyping(false), 4000)
    } else if (this.typingSentAt) {
      this.typingSentAt = 0
      this.socket.emit('typing', { typing: false })
    }
  }

  private showAgentTyping(typing: boolean, name: string | null): void {
    window.clearTimeout(this.agentTypingTimer)
    this.typing.textContent = typing ? this.t('typing', { name: name || this.status.agent?.name || this.t('agent') }) : ''
    if (typing) this.agentTypingTimer = window.setTimeout(() => this.showAgentTyping(false, null), 6000)
  }

  private async attach(files: FileList | null): Promise<void> {
    const config = this.session?.config
    if (!files || !config) return
    const tokens: string[] = []
    const names: string[] = []
    for (const file of Array.from(files)) {
      if (file.size > config.max_attachment_bytes) {
        this.showInfo(this.t('tooLarge', { name: file.name, size: formatSize(config.max_attachment_bytes) }))
        continue
      }
      if (file.type && !config.attachment_types.includes(file.type)) {
        this.showInfo(this.t('badType', { name: file.name }))
        continue
      }
      this.showInfo(this.t('uploading', { name: file.name }))
      try {
        const uploaded = await this.api.upload(file)
        tokens.push(uploaded.token)
        names.push(uploaded.filename)
        this.showInfo('')
      } catch (error) {
        const key: TextKey = error instanceof HttpError && error.code === 'unsupported_type' ? 'badType' : 'uploadFailed'
        this.showInfo(this.t(key, { name: file.name, size: formatSize(config.max_attachment_bytes) }))
      }
    }
    this.fileInput.value = ''
    if (tokens.length) {
      const text = this.input.value.trim()
      this.input.value = ''
      this.send(text, tokens, names)
    }
  }

  // --- status and the offline notice ---------------------------------------------------------------------

  private setStatus(status: Status): void {
    this.status = status
    this.dot.classList.toggle('sb-on', status.online)
    const who = status.agent?.name ?? this.t('agent')
    this.presenceText.textContent = `${who} · ${this.t(status.online ? 'online' : 'offline')}`
    this.renderNotice()
  }

  private renderNotice(): void {
    const session = this.session
    const key = session
      ? [this.status.online, this.status.open, session.visitor.has_email, this.savedEmail, this.locale].join('|')
      : ''
    if (key === this.noticeKey) return // unchanged: keep the form and whatever is typed into it
    this.noticeKey = key
    this.notice.replaceChildren()
    if (!session || this.status.online) {
      this.notice.hidden = true
      return
    }
    this.notice.hidden = false
    const custom = configured(session.config.offline_message, this.locale)
    this.notice.appendChild(el('p', '', custom ?? this.t(this.status.open ? 'offlineNotice' : 'closedNotice')))
    if (this.savedEmail) this.notice.appendChild(el('p', '', this.t('emailSaved', { email: this.savedEmail })))
    if (session.visitor.has_email) return
    const form = el('form', 'sb-email')
    const input = el('input')
    input.type = 'email'
    input.required = true
    input.placeholder = this.t('email')
    input.setAttribute('aria-label', this.t('email'))
    input.autocomplete = 'email'
    const save = el('button', 'sb-send', this.t('saveEmail'))
    save.type = 'submit'
    form.append(input, save)
    form.addEventListener('submit', (event) => {
      event.preventDefault()
      const email = input.value.trim()
      if (!validEmail(email)) {
        this.showInfo(this.t('invalidEmail'))
        return
      }
      void this.openSession({ email }).then(
        () => {
          this.savedEmail = email
          this.renderNotice()
          this.showInfo('')
        },
        (error) => this.showInfo(error instanceof HttpError ? error.message : this.t('error')),
      )
    })
    this.notice.appendChild(form)
  }

  // --- pre-chat form --------------------------------------------------------------------------------------

  private fieldLabel(field: FieldDef): string {
    const custom = configured(field.label, this.locale)
    if (custom) return custom
    if (field.name === 'name' || field.name === 'email' || field.name === 'phone') return this.t(field.name)
    return field.name
  }

  private showPrechat(show: boolean): void {
    this.prechat.hidden = !show
    this.composer.hidden = show
    this.body.hidden = show
    if (!show || !this.session) return
    this.prechat.replaceChildren(el('p', 'sb-intro', this.t('prechatIntro')))
    for (const field of this.session.config.prechat_fields) {
      const label = el('label', 'sb-field')
      const caption = el('span', '', this.fieldLabel(field) + (field.required ? ' *' : ''))
      const input = field.type === 'textarea' ? el('textarea') : el('input')
      input.name = field.name
      input.required = field.required
      if (input instanceof HTMLInputElement) input.type = field.type === 'tel' ? 'tel' : field.type
      if (field.name === 'name') input.autocomplete = 'name'
      if (field.name === 'email') input.autocomplete = 'email'
      label.append(caption, input)
      this.prechat.appendChild(label)
    }
    const start = el('button', 'sb-send sb-wide', this.t('start'))
    start.type = 'submit'
    this.prechat.appendChild(start)
  }

  private async submitPrechat(): Promise<void> {
    const data = new FormData(this.prechat)
    const values: Record<string, string> = {}
    for (const [key, value] of data.entries()) if (typeof value === 'string' && value.trim()) values[key] = value.trim()
    if (values.email && !validEmail(values.email)) {
      this.showInfo(this.t('invalidEmail'))
      return
    }
    const { name, email, ...fields } = values
    try {
      await this.openSession({ name, email, fields })
    } catch (error) {
      this.showInfo(error instanceof HttpError ? error.message : this.t('error'))
      return
    }
    storage.set('prechat', '1')
    this.showInfo('')
    this.showPrechat(false)
    this.renderNotice()
    this.render()
    this.input.focus()
  }

  // --- rendering ------------------------------------------------------------------------------------------

  private applyLocale(locale: Locale): void {
    this.locale = locale
    this.t = translator(locale)
    document.documentElement.lang = locale
    this.title.textContent = this.session?.config.title || this.t('title')
    this.muteButton.setAttribute('aria-label', this.t(this.muted ? 'unmute' : 'mute'))
    this.muteButton.title = this.t(this.muted ? 'unmute' : 'mute')
    this.closeButton.setAttribute('aria-label', this.t('close'))
    this.closeButton.title = this.t('close')
    this.input.placeholder = this.t('placeholder')
    this.input.setAttribute('aria-label', this.t('placeholder'))
    this.attachButton.setAttribute('aria-label', this.t('attach'))
    this.attachButton.title = this.t('attach')
    this.sendButton.textContent = this.t('send')
    this.earlier.textContent = this.t('earlier')
    if (this.session) this.setStatus(this.status)
  }

  private build(): void {
    this.muteButton.type = this.closeButton.type = this.attachButton.type = 'button'
    this.muteButton.textContent = this.muted ? '🔕' : '🔔'
    this.closeButton.textContent = '✕'
    this.attachButton.textContent = '📎'
    this.sendButton.type = 'submit'
    this.fileInput.type = 'file'
    this.fileInput.hidden = true
    this.fileInput.multiple = true
    this.input.rows = 1
    this.input.maxLength = 5000
    this.notice.hidden = true
    this.earlier.type = 'button'
    this.earlier.hidden = true
    this.typing.setAttribute('aria-live', 'polite')
    this.list.setAttribute('aria-live', 'polite')
    this.info.setAttribute('role', 'status')
    this.prechat.hidden = true
    this.composer.hidden = true // shown once the session is ready, so nothing typed before is lost

    const titles = el('div', 'sb-titles')
    this.presence.append(this.dot, this.presenceText)
    titles.append(this.title, this.presence)
    this.header.append(titles, this.muteButton, this.closeButton)
    this.body.append(this.earlier, this.list, this.typing)
    this.composer.append(this.fileInput, this.attachButton, this.input, this.sendButton)
    this.root.append(this.header, this.notice, this.body, this.prechat, this.info, this.composer)
    this.applyLocale('en')

    this.closeButton.addEventListener('click', () => {
      this.open = false
      this.parent({ type: 'sb:close' })
    })
    this.muteButton.addEventListener('click', () => {
      this.muted = !this.muted
      storage.set('muted', this.muted ? '1' : null)
      this.muteButton.textContent = this.muted ? '🔕' : '🔔'
      this.applyLocale(this.locale)
    })
    this.attachButton.addEventListener('click', () => this.fileInput.click())
    this.fileInput.addEventListener('change', () => void this.attach(this.fileInput.files))
    this.composer.addEventListener('submit', (event) => {
      event.preventDefault()
      const text = this.input.value.trim()
      if (!text || !this.session) return
      this.input.value = ''
      this.send(text)
    })
    this.input.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
        event.preventDefault()
        this.composer.requestSubmit()
      }
    })
    this.input.addEventListener('input', () => this.sendTyping(this.input.value.length > 0))
    this.prechat.addEventListener('submit', (event) => {
      event.preventDefault()
      void this.submitPrechat()
    })
    this.earlier.addEventListener('click', () => {
      const oldest = Math.min(...[...this.entries.values()].map((e) => e.id ?? Infinity))
      if (!Number.isFinite(oldest)) return
      void this.loadHistory(oldest).then(() => this.render(false, true))
    })
    window.addEventListener('keydown', (event) => {
      if (event.key === 'Escape' && this.open) this.closeButton.click()
    })
  }

  private showInfo(text: string): void {
    this.info.textContent = text
  }

  private sorted(): Entry[] {
    return [...this.entries.values()].sort((a, b) => {
      if (a.id !== null && b.id !== null) return a.id - b.id
      if (a.id !== null) return -1
      if (b.id !== null) return 1
      return a.seq - b.seq
    })
  }

  render(scroll = false, keepTop = false): void {
    const nearBottom = this.body.scrollHeight - this.body.scrollTop - this.body.clientHeight < 80
    const previousHeight = this.body.scrollHeight
    const items: HTMLElement[] = []
    const greeting = configured(this.session?.config.greeting, this.locale) ?? this.t('greeting')
    const hello = el('li', 'sb-msg sb-out sb-greeting')
    hello.appendChild(el('div', 'sb-bubble', greeting))
    items.push(hello)
    const entries = this.sorted()
    const lastOwn = [...entries].reverse().find((entry) => entry.direction === 'in')
    for (const entry of entries) items.push(this.renderEntry(entry, entry === lastOwn))
    this.list.replaceChildren(...items)
    this.earlier.hidden = !this.hasMore
    if (keepTop) this.body.scrollTop = this.body.scrollHeight - previousHeight
    else if (scroll || nearBottom) this.body.scrollTop = this.body.scrollHeight
  }

  private renderEntry(entry: Entry, lastOwn: boolean): HTMLElement {
    const item = el('li', `sb-msg ${entry.direction === 'in' ? 'sb-in' : 'sb-out'}`)
    item.dataset.id = String(entry.id ?? '')
    if (entry.direction === 'out') item.appendChild(el('div', 'sb-author', entry.authorName || this.t('agent')))
    const bubble = el('div', 'sb-bubble')
    if (entry.text) appendText(bubble, entry.text)
    for (const attachment of entry.attachments) bubble.appendChild(this.renderAttachment(attachment))
    for (const name of entry.localFiles) bubble.appendChild(el('div', 'sb-file', `📎 ${name}`))
    item.appendChild(bubble)
    const meta = el('div', 'sb-meta', formatTime(entry.createdAt, this.locale))
    if (entry.direction === 'in') {
      let state = ''
      if (entry.state === 'pending') state = this.t('sending')
      else if (entry.state === 'failed') state = this.t('failed')
      else if (entry.readAt) state = lastOwn ? this.t('seen') : ''
      else if (lastOwn) state = this.t('sent')
      if (state) meta.appendChild(el('span', `sb-state sb-${entry.readAt ? 'seen' : entry.state}`, state))
      if (entry.state === 'failed') {
        item.classList.add('sb-failed')
        item.addEventListener('click', () => {
          this.entries.delete(entry.key)
          this.send(entry.text)
        })
      }
    }
    item.appendChild(meta)
    return item
  }

  private renderAttachment(attachment: WidgetMessage['attachments'][number]): HTMLElement {
    const blob = () => {
      let url = this.blobs.get(attachment.id)
      if (!url) {
        url = this.api.blobUrl(attachment.url)
        this.blobs.set(attachment.id, url)
      }
      return url
    }
    if (showsInline(attachment.content_type)) {
      const image = el('img', 'sb-image')
      image.alt = attachment.filename
      void blob().then((url) => (image.src = url), () => (image.alt = `⚠ ${attachment.filename}`))
      return image
    }
    const link = el('button', 'sb-file', `📎 ${attachment.filename} (${formatSize(attachment.size)})`)
    link.type = 'button'
    link.title = this.t('download')
    link.addEventListener('click', () => {
      void blob().then((url) => {
        const anchor = el('a')
        anchor.href = url
        anchor.download = attachment.filename
        anchor.click()
      })
    })
    return link
  }
}

if (Number.isInteger(channelId) && channelId > 0) {
  const app = new ChatApp()
  app.boot()
  ;(window as unknown as { switchboardChat?: ChatApp }).switchboardChat = app
}
