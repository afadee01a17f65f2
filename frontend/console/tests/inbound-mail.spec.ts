// The admin's inbound mail section, against a fake server behind fetch: the URLs it asks for are the contract.
import { afterEach, describe, expect, it, vi } from 'vitest'
import { flushPromises } from '@vue/test-utils'
import * as events from '@shared/events'
import type { InboundMail } from '@console/api'
import AppNav from '@console/components/AppNav.vue'
import { setLocale } from '@console/i18n'
import { useAuthStore } from '@console/stores/auth'
import { useInboundMailStore } from '@console/stores/inboundMail'
import { useRealtimeStore } from '@console/stores/realtime'
import { useUiStore } from '@console/stores/ui'
import AdminView from '@console/views/AdminView.vue'
import { mountWith, user } from './helpers'

afterEach(() => {
  document.body.innerHTML = ''
  setLocale('en')
  vi.unstubAllGlobals()
})

function mail(id: number, overrides: Partial<InboundMail> = {}): InboundMail {
  return {
    id,
    received_at: '2030-01-02T10:00:00Z',
    mail_from: 'anna@example.com',
    recipients: ['support@example.com'],
    size: 2048,
    status: 'failed',
    attempts: 5,
    next_attempt_at: null,
    outcome: 'OperationalError: database is locked',
    message_id: null,
    processed_at: null,
    ...overrides,
  }
}

type Handler = (method: string, url: string) => { status?: number; body: unknown }

/** Stub fetch with ``handler``; return the "METHOD url" of every request so far. */
function serve(handler: Handler): () => string[] {
  const fetchMock = vi.fn(async (url: string, init?: RequestInit) => {
    const { status = 200, body } = handler(init?.method ?? 'GET', url)
    return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } })
  })
  vi.stubGlobal('fetch', fetchMock)
  return () => fetchMock.mock.calls.map(([url, init]) => `${init?.method ?? 'GET'} ${url}`)
}

async function openSection() {
  const mounted = mountWith(AdminView)
  await mounted.router.push('/admin/inbound')
  await flushPromises()
  return mounted
}

const rowTexts = (wrapper: Awaited<ReturnType<typeof openSection>>['wrapper']) =>
  wrapper.findAll('[data-testid="inbound-mail"] tbody tr').map((row) => row.findAll('td').map((cell) => cell.text()))

describe('AdminView: inbound mail', () => {
  it('lists failed mail by default, newest first, with a raw download and a retry for each', async () => {
    const requests = serve(() => ({
      body: { items: [mail(12), mail(11, { mail_from: '<>', outcome: 'KeyError: x' })], next_before: null },
    }))
    const { wrapper } = await openSection()
    expect(requests()).toEqual(['GET /api/v1/inbound-mail?status=failed&limit=50'])
    const section = wrapper.get('[data-testid="inbound-mail"]')
    expect((section.get('[data-testid="mail-filter"]').element as HTMLSelectElement).value).toBe('failed')
    expect(section.findAll('th[scope="col"]').map((th) => th.text())).toEqual([
      'Received', 'Sender', 'Status', 'Attempts', 'Outcome', 'Actions',
    ])
    const rows = rowTexts(wrapper)
    expect(rows.map((cells) => cells.slice(2, 5))).toEqual([
      ['Failed', '5', 'OperationalError: database is locked'],
      ['Failed', '5', 'KeyError: x'],
    ])
    const senders = section.findAll('tbody td:nth-child(2)')
    expect(senders.map((cell) => cell.get('span').text())).toEqual([
      'anna@example.com', 'Bounce (null sender)',
    ])
    expect(senders.map((cell) => cell.get('div').text())).toEqual(['to support@example.com', 'to support@example.com'])
    expect(rows[0][0]).toMatch(/2030/)
    expect(section.get('time').attributes('datetime')).toBe('2030-01-02T10:00:00Z')
    const raw = section.get('[data-testid="mail-12"] a[download]')
    expect(raw.attributes('href')).toBe('/api/v1/inbound-mail/12/raw')
    expect(raw.attributes('aria-label')).toBe('Raw source of mail 12, 2 kB')
    expect(section.get('[data-testid="mail-11"] button').attributes('aria-label')).toBe('Retry mail 11')
    expect(section.text()).not.toContain('Load more')
  })

  it('refetches when the filter changes, and says so when nothing matches', async () => {
    const requests = serve((_method, url) => ({
      body: url.includes('status=failed')
        ? { items: [], next_before: null }
        : { items: [mail(7, { status: 'stored', attempts: 1, outcome: 'stored as message 42', message_id: 42 })], next_before: null },
    }))
    const { wrapper } = await openSection()
    expect(wrapper.get('[data-testid="mail-empty"]').text()).toBe(
      'No failed mail — everything that arrived was stored or deliberately rejected.',
    )

    await wrapper.get('[data-testid="mail-filter"]').setValue('all')
    await flushPromises()
    expect(requests().at(-1)).toBe('GET /api/v1/inbound-mail?limit=50')
    expect(rowTexts(wrapper)[0].slice(2, 5)).toEqual(['Stored', '1', 'stored as message 42'])
    expect(wrapper.find('[data-testid="mail-7"] button').exists()).toBe(false) // only failed mail can be retried

    await wrapper.get('[data-testid="mail-filter"]').setValue('rejected')
    await flushPromises()
    expect(requests().at(-1)).toBe('GET /api/v1/inbound-mail?status=rejected&limit=50')
    expect(requests()).toHaveLength(3)
  })

  it('retries a failed mail: posts, shows the row as queued and says so', async () => {
    const requests = serve((method) =>
      method === 'POST'
        ? { body: mail(12, { status: 'queued', attempts: 0, outcome: null, next_attempt_at: '2030-01-02T11:00:00Z' }) }
        : { body: { items: [mail(12)], next_before: null } },
    )
    const { wrapper } = await openSection()
    await wrapper.get('[data-testid="mail-12"] button').trigger('click')
    await flushPromises()
    expect(requests().at(-1)).toBe('POST /api/v1/inbound-mail/12/retry')
    const row = wrapper.get('[data-testid="mail-12"]')
    expect(row.findAll('td').map((cell) => cell.text()).slice(2, 5)).toEqual(['Queued', '0', 'Waiting to be processed.'])
    expect(row.find('button').exists()).toBe(false)
    const toast = useUiStore().toasts.at(-1)
    expect(toast).toMatchObject({ kind: 'success', text: 'Mail 12 is queued to be processed again.' })
    expect(wrapper.find('[role="alert"]').exists()).toBe(false)
  })

  it("shows the server's message when the mail is no longer failed (409), and the row as it is now", async () => {
    const now = mail(12, { status: 'stored', attempts: 1, outcome: 'stored as message 9', message_id: 9 })
    const requests = serve((method, url) => {
      if (method === 'POST')
        return { status: 409, body: { error: { code: 'not_failed', message: 'spooled mail 12 is stored, not failed: nothing to retry' } } }
      return url.endsWith('/inbound-mail/12') ? { body: now } : { body: { items: [mail(12)], next_before: null } }
    })
    const { wrapper } = await openSection()
    await wrapper.get('[data-testid="mail-12"] button').trigger('click')
    await flushPromises()
    expect(wrapper.get('[role="alert"]').text()).toBe('spooled mail 12 is stored, not failed: nothing to retry')
    expect(requests().slice(1)).toEqual(['POST /api/v1/inbound-mail/12/retry', 'GET /api/v1/inbound-mail/12'])
    expect(rowTexts(wrapper)[0].slice(2, 5)).toEqual(['Stored', '1', 'stored as message 9'])
    expect(useUiStore().toasts).toEqual([])
  })

  it('loads more with before= and appends the next page', async () => {
    const requests = serve((_method, url) =>
      url.includes('before=')
        ? { body: { items: [mail(3)], next_before: null } }
        : { body: { items: [mail(9), mail(8)], next_before: 8 } },
    )
    const { wrapper } = await openSection()
    const more = wrapper.get('[data-testid="inbound-mail"] .list-footer button')
    expect(more.text()).toBe('Load more')
    await more.trigger('click')
    await flushPromises()
    expect(requests().at(-1)).toBe('GET /api/v1/inbound-mail?status=failed&before=8&limit=50')
    expect(wrapper.findAll('[data-testid="inbound-mail"] tbody tr').map((row) => row.attributes('data-testid'))).toEqual([
      'mail-9', 'mail-8', 'mail-3',
    ])
    expect(wrapper.find('[data-testid="inbound-mail"] .list-footer').exists()).toBe(false)
  })

  it('speaks Polish', async () => {
    serve(() => ({ body: { items: [mail(5, { mail_from: null })], next_before: null } }))
    const mounted = mountWith(AdminView)
    setLocale('pl') // mountWith starts in English
    await mounted.router.push('/admin/inbound')
    await flushPromises()
    const section = mounted.wrapper.get('[data-testid="inbound-mail"]')
    expect(section.text()).toContain('Zwrotka (pusty nadawca)')
    expect(section.get('[data-testid="mail-5"] button').text()).toBe('Ponów')
    expect(mounted.wrapper.text()).toContain('Poczta przychodząca')
  })
})

describe('AppNav: failed mail waiting for a retry', () => {
  const COUNTS = { queued: 4, processing: 0, stored: 120, rejected: 2, failed: 3 }
  const badge = (wrapper: ReturnType<typeof mountWith>['wrapper']) => wrapper.find('[data-testid="failed-mail-count"]')

  it('counts failed mail on the Admin link for admins, live from the socket', async () => {
    const requests = serve((_method, url) => ({ body: url.endsWith('/inbound-mail/counts') ? COUNTS : { items: [] } }))
    const { wrapper } = mountWith(AppNav)
    await flushPromises()
    expect(requests().filter((request) => request.includes('inbound-mail'))).toEqual([]) // nobody signed in yet

    useAuthStore().accept(user({ role: 'admin' }), 'csrf')
    await flushPromises()
    expect(requests()).toContain('GET /api/v1/inbound-mail/counts')
    expect(badge(wrapper).text()).toBe('3')
    expect(badge(wrapper).attributes('aria-label')).toBe('3 failed mails wait for a retry')

    const realtime = useRealtimeStore()
    realtime.dispatch(events.INBOUND_MAIL_FAILED, { failed: 1 })
    await flushPromises()
    expect(badge(wrapper).attributes('aria-label')).toBe('1 failed mail waits for a retry')
    setLocale('pl')
    realtime.dispatch(events.INBOUND_MAIL_FAILED, { failed: 5 })
    await flushPromises()
    expect(badge(wrapper).attributes('aria-label')).toBe('5 nieudanych e-maili czeka na ponowienie')
    realtime.dispatch(events.INBOUND_MAIL_FAILED, { failed: 0 }) // an admin retried them all
    await flushPromises()
    expect(badge(wrapper).exists()).toBe(false)
  })

  it('asks nothing and shows nothing for agents, whatever the socket says', async () => {
    const requests = serve(() => ({ body: { items: [] } }))
    const { wrapper } = mountWith(AppNav)
    useAuthStore().accept(user({ role: 'agent' }), 'csrf')
    await flushPromises()
    useRealtimeStore().dispatch(events.INBOUND_MAIL_FAILED, { failed: 2 })
    await flushPromises()
    expect(requests().filter((request) => request.includes('inbound-mail'))).toEqual([])
    expect(useInboundMailStore().failed).toBe(0)
    expect(badge(wrapper).exists()).toBe(false)
  })
})
