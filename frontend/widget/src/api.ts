// The widget's HTTP calls: the visitor session, history, uploads, and files fetched with the visitor token.

export interface FieldDef {
  name: string
  type: 'text' | 'email' | 'tel' | 'textarea'
  required: boolean
  label?: string | Record<string, string>
}

export interface WidgetConfig {
  title: string
  prechat_fields: FieldDef[]
  attachment_types: string[]
  max_attachment_bytes: number
  offline_message: unknown
  greeting: unknown
  locale: string | null
  color: string | null
  identity_verification: boolean
}

export interface Status {
  open: boolean
  online: boolean
  agent: { name: string; online: boolean } | null
  agents_online?: number
}

export interface AttachmentInfo {
  id: number
  filename: string
  content_type: string
  size: number
  url: string
}

export interface WidgetMessage {
  id: number
  client_id: string | null
  direction: 'in' | 'out'
  text: string
  created_at: string | null
  delivery_status: string
  read_at?: string | null
  author_name?: string | null
  attachments: AttachmentInfo[]
}

export interface Session {
  token: string
  visitor: { name: string | null; has_email: boolean; verified: boolean; prechat_done: boolean }
  conversation_id: number | null
  config: WidgetConfig
  status: Status
}

export interface SessionRequest {
  channel_id: number
  host: string
  token?: string | null
  user_id?: string
  user_hash?: string
  name?: string
  email?: string
  fields?: Record<string, string>
}

export class HttpError extends Error {
  constructor(
    public status: number,
    public code: string,
    message: string,
  ) {
    super(message)
  }
}

async function call<T>(path: string, init: RequestInit): Promise<T> {
  // same-origin: the session call carries the partitioned visitor cookie where third-party storage is blocked.
  const response = await fetch(path, { credentials: 'same-origin', ...init })
  const data = await response.json().catch(() => null)
  if (!response.ok) {
    const error = data?.error ?? {}
    throw new HttpError(response.status, error.code ?? 'http_error', error.message ?? response.statusText)
  }
  return data as T
}

export class Api {
  token: string | null = null

  private auth(): Record<string, string> {
    return this.token ? { Authorization: `Bearer ${this.token}` } : {}
  }

  session(body: SessionRequest): Promise<Session> {
    return call<Session>('/api/v1/widget/session', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    })
  }

  history(before?: number): Promise<{ conversation_id: number | null; items: WidgetMessage[]; has_more: boolean }> {
    const query = before ? `?before=${before}` : ''
    return call(`/api/v1/widget/messages${query}`, { headers: this.auth() })
  }

  upload(file: File): Promise<{ token: string; filename: string; content_type: string; size: number }> {
    const form = new FormData()
    form.append('file', file)
    return call('/api/v1/widget/attachments', { method: 'POST', headers: this.auth(), body: form })
  }

  async blobUrl(url: string): Promise<string> {
    const response = await fetch(url, { headers: this.auth(), credentials: 'omit' })
    if (!response.ok) throw new HttpError(response.status, 'http_error', response.statusText)
    return URL.createObjectURL(await response.blob())
  }
}
