// A small fetch wrapper: JSON (or FormData) in, JSON out, the session cookie, the CSRF header on unsafe methods,
// and `{error: {code, message, fields}}` bodies turned into ApiError.
import type { ApiErrorBody } from './types'

export class ApiError extends Error {
  constructor(
    public status: number,
    public code: string,
    message: string,
    public fields: Record<string, string> = {},
  ) {
    super(message)
    this.name = 'ApiError'
  }
}

export type Query = Record<string, string | number | boolean | null | undefined>

const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])

export function buildQuery(query?: Query): string {
  if (!query) return ''
  const params = new URLSearchParams()
  for (const [key, value] of Object.entries(query)) {
    if (value === undefined || value === null || value === '') continue
    params.set(key, String(value))
  }
  const text = params.toString()
  return text ? `?${text}` : ''
}

export class Http {
  csrfToken = ''
  csrfHeader = 'X-CSRF-Token'
  /** Called on any 401, so the app can show the login screen. */
  onUnauthorized: (() => void) | null = null

  constructor(
    public base = '',
    private fetchImpl: typeof fetch = (...args) => fetch(...args),
  ) {}

  async request<T>(method: string, path: string, body?: unknown, query?: Query): Promise<T> {
    const headers: Record<string, string> = { Accept: 'application/json' }
    // A FormData body (files) goes as multipart/form-data: the browser writes that header with its boundary.
    const form = typeof FormData !== 'undefined' && body instanceof FormData
    if (body !== undefined && !form) headers['Content-Type'] = 'application/json'
    if (UNSAFE.has(method) && this.csrfToken) headers[this.csrfHeader] = this.csrfToken
    let response: Response
    try {
      response = await this.fetchImpl(this.base + path + buildQuery(query), {
        method,
        headers,
        credentials: 'same-origin',
        body: body === undefined ? undefined : form ? (body as FormData) : JSON.stringify(body),
      })
    } catch (err) {
      throw new ApiError(0, 'network_error', err instanceof Error ? err.message : String(err))
    }
    const text = await response.text()
    let data: unknown = null
    if (text) {
      try {
        data = JSON.parse(text)
      } catch {
        data = null
      }
    }
    if (!response.ok) {
      const error = (data as ApiErrorBody | null)?.error
      if (response.status === 401 && this.onUnauthorized) this.onUnauthorized()
      throw new ApiError(
        response.status,
        error?.code ?? 'http_error',
        error?.message ?? `${response.status} ${response.statusText}`,
        error?.fields ?? {},
      )
    }
    return data as T
  }

  get<T>(path: string, query?: Query): Promise<T> {
    return this.request<T>('GET', path, undefined, query)
  }

  post<T>(path: string, body: unknown = {}): Promise<T> {
    return this.request<T>('POST', path, body)
  }

  put<T>(path: string, body: unknown = {}): Promise<T> {
    return this.request<T>('PUT', path, body)
  }

  patch<T>(path: string, body: unknown = {}): Promise<T> {
    return this.request<T>('PATCH', path, body)
  }

  delete<T>(path: string): Promise<T> {
    return this.request<T>('DELETE', path)
  }
}
