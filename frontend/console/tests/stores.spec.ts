import { beforeEach, describe, expect, it, vi } from 'vitest'
import { Http, ApiError } from '@shared/http'
import * as events from '@shared/events'
import { api, http } from '@console/api'
import { useAuthStore } from '@console/stores/auth'
import { useConversationStore } from '@console/stores/conversation'
import { useCustomerStore } from '@console/stores/customer'
import { useInboxStore } from '@console/stores/inbox'
import { useRealtimeStore } from '@console/stores/realtime'
import { useUiStore } from '@console/stores/ui'
import { conversation, customer, flush, freshPinia, message, user } from './helpers'

const me = user({ id: 7, name: 'Ola Agent' })

function signIn(): void {
  const auth = useAuthStore()
  auth.accept(me, 'csrf-1')
}

beforeEach(() => {
  localStorage.clear()
  freshPinia()
})

describe('http client', () => {
  function fakeFetch(status: number, body: unknown) {
    return vi.fn(async (_url: RequestInfo | URL, _init?: RequestInit) =>
      new Response(body === null ? '' : JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } }),
    )
  }

  it('sends the CSRF header on writes only, and the query string on reads', async () => {
    const fetch = fakeFetch(200, { ok: true })
    const client = new Http('/api/v1', fetch as unknown as typeof globalThis.fetch)
    client.csrfToken = 'tok'
    await client.get('/conversations', { status: 'open', q: '', assignee: undefined })
    await client.post('/x', { a: 1 })
    const [getUrl, getInit] = fetch.mock.calls[0]
    expect(getUrl).toBe('/api/v1/conversations?status=open')
    expect((getInit?.headers as Record<string, string>)['X-CSRF-Token']).toBeUndefined()
    const [, postInit] = fetch.mock.calls[1]
    expect((postInit?.headers as Record<string, string>)['X-CSRF-Token']).toBe('tok')
    expect(postInit?.body).toBe('{"a":1}')
  })

  it('turns error bodies into ApiError and reports 401s', async () => {
    const client = new Http('', fakeFetch(422, { error: { code: 'validation_failed', message: 'Bad', fields: { value: 'not a phone' } } }) as never)
    await expect(client.post('/x')).rejects.toMatchObject({ status: 422, code: 'validation_failed', fields: { value: 'not a phone' } })
    const onUnauthorized = vi.fn()
    const anonymous = new Http('', fakeFetch(401, { error: { code: 'unauthorized', message: 'Log in first.' } }) as never)
    anonymous.onUnauthorized = onUnauthorized
    await expect(anonymous.get('/me')).rejects.toBeInstanceOf(ApiError)
    expect(onUnauthorized).toHaveBeenCalledOnce()
  })
})

describe('auth store', () => {
  it('keeps the CSRF token for later writes after logging in', async () => {
    vi.spyOn(api, 'login').mockResolvedValue({ user: me, csrf_token: 'abc', csrf_header: 'X-CSRF-Token' })
    const auth = useAuthStore()
    expect(await auth.login('ola@example.com', 'pw')).toBe(true)
    expect(auth.isAuthenticated).toBe(true)
    expect(http.csrfToken).toBe('abc')
    expect(auth.hasRole('agent')).toBe(true)
    expect(auth.hasRole('admin')).toBe(false)
  })

  it('remembers why a login failed', async () => {
    vi.spyOn(api, 'login').mockRejectedValue(new ApiError(401, 'invalid_credentials', 'Wrong'))
    const auth = useAuthStore()
    expect(await auth.login('x@example.com', 'bad')).toBe(false)
    expect(auth.error).toBe('invalid_credentials')
    expect(auth.isAuthenticated).toBe(false)
  })

  it('asks the server only once whether the session is still valid', async () => {
    const me$ = vi.spyOn(api, 'me').mockResolvedValue({ user: me, csrf_token: 't' })
    const auth = useAuthStore()
    await Promise.all([auth.restore(), auth.restore()])
    await auth.restore()
    expect(me$).toHaveBeenCalledOnce()
    expect(auth.user?.id).toBe(7)
  })
})

describe('inbox store', () => {
  it('asks for my open conversations by default and selects the first row', async () => {
    signIn()
    const rows = [conversation({ id: 2 }), conversation({ id: 1 })]
    const list = vi.spyOn(api, 'conversations').mockResolvedValue({ items: rows, next_cursor: 'c1' })
    const inbox = useInboxStore()
    await inbox.load()
    expect(list).toHaveBeenCalledWith(expect.objectContaining({ assignee: 'me', status: 'open' }), null, 50)
    expect(inbox.items.map((row) => row.id)).toEqual([2, 1])
    expect(inbox.selectedId).toBe(2)
    expect(inbox.answeredAt).toBeGreaterThan(0)
  })

  it('maps views to filters: unassigned, team', async () => {
    signIn()
    const list = vi.spyOn(api, 'conversations').mockResolvedValue({ items: [], next_cursor: null })
    const inbox = useInboxStore()
    inbox.setView('unassigned')
    await flush()
    expect(list).toHaveBeenLastCalledWith(expect.objectContaining({ assignee: 'none' }), null, 50)
    inbox.setView('team:3')
    await flush()
    expect(list).toHaveBeenLastCalledWith(expect.objectContaining({ team: 3 }), null, 50)
  })

  it('appends the next page without duplicates', async () => {
    signIn()
    const list = vi.spyOn(api, 'conversations')
    list.mockResolvedValueOnce({ items: [conversation({ id: 3 }), conversation({ id: 2 })], next_cursor: 'c1' })
    list.mockResolvedValueOnce({ items: [conversation({ id: 2 }), conversation({ id: 1 })], next_cursor: null })
    const inbox = useInboxStore()
    await inbox.load()
    await inbox.loadMore()
    expect(list).toHaveBeenLastCalledWith(expect.anything(), 'c1', 200)
    expect(inbox.items.map((row) => row.id)).toEqual([3, 2, 1])
    expect(inbox.nextCursor).toBeNull()
  })

  it('moves a conversation with a new message to the top and counts it unread', async () => {
    signIn()
    const rows = [
      conversation({ id: 3, assignee_id: 7, last_activity_at: '2030-01-01T12:00:00Z' }),
      conversation({ id: 2, assignee_id: 7, last_activity_at: '2030-01-01T11:00:00Z' }),
    ]
    vi.spyOn(api, 'conversations').mockResolvedValue({ items: rows, next_cursor: null })
    const inbox = useInboxStore()
    await inbox.load()
    inbox.applyMessage(message({ conversation_id: 2, text: 'Where is my parcel?', created_at: '2030-01-01T13:00:00Z' }))
    expect(inbox.items.map((row) => row.id)).toEqual([2, 3])
    expect(inbox.items[0].preview).toBe('Where is my parcel?')
    expect(inbox.unread[2]).toBe(1)
    expect(inbox.unreadTotal).toBe(1)
    inbox.setActive(2)
    expect(inbox.unread[2]).toBeUndefined()
    // the open conversation never counts as unread
    inbox.applyMessage(message({ conversation_id: 2, created_at: '2030-01-01T14:00:00Z' }))
    expect(inbox.unreadTotal).toBe(0)
  })

  it('adds new conversations that match the view and drops ones that leave it', async () => {
    signIn()
    vi.spyOn(api, 'conversations').mockResolvedValue({ items: [conversation({ id: 1, assignee_id: 7 })], next_cursor: null })
    const inbox = useInboxStore()
    await inbox.load()
    inbox.applyConversation(conversation({ id: 5, assignee_id: 7, last_activity_at: '2030-02-01T00:00:00Z' }))
    inbox.applyConversation(conversation({ id: 6, assignee_id: 99 }))
    expect(inbox.items.map((row) => row.id)).toEqual([5, 1])
    inbox.applyConversation({ ...inbox.items[0], status: 'resolved' })
    expect(inbox.items.map((row) => row.id)).toEqual([1])
  })

  it('keeps rows that sort past the loaded pages for the next page', async () => {
    signIn()
    vi.spyOn(api, 'conversations').mockResolvedValue({
      items: [conversation({ id: 9, assignee_id: 7, last_activity_at: '2030-01-05T00:00:00Z' })],
      next_cursor: 'more',
    })
    const inbox = useInboxStore()
    await inbox.load()
    inbox.applyConversation(conversation({ id: 4, assignee_id: 7, last_activity_at: '2029-01-01T00:00:00Z' }))
    expect(inbox.items.map((row) => row.id)).toEqual([9])
  })

  it('keeps topics and preview when an event carries a bare conversation', async () => {
    signIn()
    vi.spyOn(api, 'conversations').mockResolvedValue({
      items: [conversation({ id: 1, assignee_id: 7, topic_ids: [4], preview: 'hi' })],
      next_cursor: null,
    })
    const inbox = useInboxStore()
    inbox.filters = { ...inbox.filters, topic: 4 }
    await inbox.load()
    const bare = conversation({ id: 1, assignee_id: 7, last_activity_at: '2030-03-01T00:00:00Z' })
    delete bare.topic_ids
    delete bare.topics
    delete bare.preview
    inbox.applyConversation(bare)
    expect(inbox.items[0]).toMatchObject({ id: 1, topic_ids: [4], preview: 'hi' })
  })

  it('moves the keyboard selection and loads more near the end', async () => {
    signIn()
    const rows = Array.from({ length: 8 }, (_, i) => conversation({ id: 100 - i }))
    const list = vi.spyOn(api, 'conversations').mockResolvedValue({ items: rows, next_cursor: 'c' })
    const inbox = useInboxStore()
    await inbox.load()
    expect(inbox.move(1)?.id).toBe(99)
    expect(inbox.move(-5)?.id).toBe(100)
    inbox.move(6)
    await flush()
    expect(list).toHaveBeenCalledTimes(2)
  })
})

describe('conversation store', () => {
  it('follows message pages to the newest and sorts them', async () => {
    signIn()
    vi.spyOn(api, 'conversation').mockResolvedValue(conversation({ id: 1 }))
    const pages = vi.spyOn(api, 'messages')
    pages.mockResolvedValueOnce({ items: [message({ id: 1, created_at: '2030-01-01T10:00:00Z' })], next_cursor: 'p2' })
    pages.mockResolvedValueOnce({ items: [message({ id: 2, created_at: '2030-01-01T11:00:00Z' })], next_cursor: null })
    const store = useConversationStore()
    await store.open(1)
    expect(store.messages.map((m) => m.id)).toEqual([1, 2])
    expect(pages).toHaveBeenLastCalledWith(1, 'p2')
  })

  it('shows a sent reply at once and replaces it when its delivery status changes', async () => {
    signIn()
    vi.spyOn(api, 'conversation').mockResolvedValue(conversation({ id: 1 }))
    vi.spyOn(api, 'messages').mockResolvedValue({ items: [], next_cursor: null })
    const sent = message({ id: 50, direction: 'out', delivery_status: 'queued', author_id: 7 })
    const send = vi.spyOn(api, 'sendMessage').mockResolvedValue(sent)
    const store = useConversationStore()
    await store.open(1)
    await store.send({ body: 'Hi', channel: 'email' })
    expect(send).toHaveBeenCalledWith(1, { body: 'Hi', channel: 'email' })
    store.applyMessage({ ...sent, delivery_status: 'failed', error: 'mailbox full' })
    expect(store.messages).toHaveLength(1)
    expect(store.messages[0]).toMatchObject({ delivery_status: 'failed', error: 'mailbox full' })
  })

  it('keeps the newer delivery status when the socket overtakes the HTTP answer', async () => {
    signIn()
    vi.spyOn(api, 'conversation').mockResolvedValue(conversation({ id: 1 }))
    vi.spyOn(api, 'messages').mockResolvedValue({ items: [], next_cursor: null })
    const queued = message({ id: 60, direction: 'out', delivery_status: 'queued', attempts: 0 })
    let answer!: (value: typeof queued) => void
    vi.spyOn(api, 'sendMessage').mockReturnValue(new Promise((resolve) => (answer = resolve)))
    const store = useConversationStore()
    await store.open(1)
    const sending = store.send({ body: 'Hi' })
    store.applyMessage({ ...queued, delivery_status: 'sent', attempts: 1 })
    answer(queued)
    await sending
    expect(store.messages[0].delivery_status).toBe('sent')
    // a retry after a failure is news, not an echo
    store.applyMessage({ ...queued, delivery_status: 'failed', attempts: 1, error: 'timeout' })
    store.applyMessage({ ...queued, delivery_status: 'queued', attempts: 2, error: 'timeout' })
    expect(store.messages[0]).toMatchObject({ delivery_status: 'queued', attempts: 2 })
  })

  it('tracks who else views and types, and forgets typists after a while', async () => {
    signIn()
    vi.spyOn(api, 'conversation').mockResolvedValue(conversation({ id: 1 }))
    vi.spyOn(api, 'messages').mockResolvedValue({ items: [], next_cursor: null })
    const store = useConversationStore()
    await store.open(1)
    expect(store.applyViewing({ conversation_id: 1, user_id: 8, viewing: true })).toBe(true)
    expect(store.applyViewing({ conversation_id: 1, user_id: 8, viewing: true })).toBe(false)
    expect(store.applyViewing({ conversation_id: 1, user_id: 7, viewing: true })).toBe(true)
    expect(store.otherViewers).toEqual([8])
    store.applyTyping({ conversation_id: 1, user_id: 8, typing: true })
    expect(store.typingUsers).toEqual([8])
    vi.useFakeTimers()
    vi.setSystemTime(Date.now() + 10_000)
    store.tick()
    expect(store.typingUsers).toEqual([])
    expect(store.otherViewers).toEqual([8])
    // a closed tab sends no "leave": a viewer not heard from for over a minute is gone
    vi.setSystemTime(Date.now() + 80_000)
    store.tick()
    expect(store.otherViewers).toEqual([])
    expect(store.applyViewing({ conversation_id: 1, user_id: 8, viewing: true })).toBe(true)
    vi.useRealTimers()
    store.applyViewing({ conversation_id: 1, user_id: 8, viewing: false })
    expect(store.otherViewers).toEqual([])
  })
})

describe('customer store', () => {
  it('loads the profile with every conversation and reloads after adding an identity or merging', async () => {
    const profile = vi.spyOn(api, 'customer').mockResolvedValue(customer({ topics: [{ id: 1, name: 'Payment', count: 2 }] }))
    vi.spyOn(api, 'customerConversations').mockResolvedValue({ items: [conversation({ id: 1 })], next_cursor: null })
    const add = vi.spyOn(api, 'addIdentity').mockResolvedValue({} as never)
    const merge = vi.spyOn(api, 'mergeCustomer').mockResolvedValue(customer())
    const store = useCustomerStore()
    await store.load(1)
    expect(store.topicsSeen).toEqual([{ id: 1, name: 'Payment', count: 2 }])
    await store.addIdentity('phone', '+48600100200')
    expect(add).toHaveBeenCalledWith(1, 'phone', '+48600100200')
    await store.merge(2)
    expect(merge).toHaveBeenCalledWith(1, 2)
    expect(profile).toHaveBeenCalledTimes(3)
  })

  it('follows a merge that took away the customer on screen', async () => {
    const profile = vi.spyOn(api, 'customer').mockImplementation(async (id) => customer({ id }))
    vi.spyOn(api, 'customerConversations').mockResolvedValue({ items: [], next_cursor: null })
    const store = useCustomerStore()
    await store.load(2)
    store.applyMerged({ source_id: 2, target_id: 1 })
    await flush()
    expect(profile).toHaveBeenLastCalledWith(1)
    expect(store.customer?.id).toBe(1)
  })
})

describe('real-time dispatch', () => {
  it('routes message.created to the inbox and the open conversation', async () => {
    signIn()
    vi.spyOn(api, 'conversations').mockResolvedValue({ items: [conversation({ id: 1, assignee_id: 7 })], next_cursor: null })
    vi.spyOn(api, 'conversation').mockResolvedValue(conversation({ id: 1, assignee_id: 7 }))
    vi.spyOn(api, 'messages').mockResolvedValue({ items: [], next_cursor: null })
    const inbox = useInboxStore()
    const current = useConversationStore()
    await inbox.load()
    await current.open(1)
    const realtime = useRealtimeStore()
    realtime.dispatch(events.MESSAGE_CREATED, { message: message({ id: 77, conversation_id: 1, text: 'New!' }) })
    expect(current.messages.map((m) => m.id)).toEqual([77])
    expect(inbox.items[0].preview).toBe('New!')
    realtime.dispatch(events.MESSAGE_UPDATED, { message: message({ id: 77, conversation_id: 1, delivery_status: 'delivered' }) })
    expect(current.messages[0].delivery_status).toBe('delivered')
  })

  it('shows the preview of a brand-new conversation whose message came first', async () => {
    signIn()
    vi.spyOn(api, 'conversations').mockResolvedValue({ items: [], next_cursor: null })
    const inbox = useInboxStore()
    inbox.view = 'all'
    await inbox.load()
    const realtime = useRealtimeStore()
    // ingest announces the message, then the conversation it opened
    realtime.dispatch(events.MESSAGE_CREATED, { message: message({ conversation_id: 21, text: 'First words', channel: 'sms' }) })
    const bare = conversation({ id: 21, last_channel: 'sms' })
    delete bare.preview
    realtime.dispatch(events.CONVERSATION_CREATED, { conversation: bare })
    expect(inbox.items[0]).toMatchObject({ id: 21, preview: 'First words' })
    expect(inbox.unread[21]).toBe(1)
  })

  it('adds conversation.created rows to a matching view', async () => {
    signIn()
    vi.spyOn(api, 'conversations').mockResolvedValue({ items: [], next_cursor: null })
    const inbox = useInboxStore()
    inbox.view = 'all'
    await inbox.load()
    useRealtimeStore().dispatch(events.CONVERSATION_CREATED, { conversation: conversation({ id: 12 }) })
    expect(inbox.items.map((row) => row.id)).toEqual([12])
  })

  it('asks for a wrap-up after a call, but not again after this console resolved', () => {
    signIn()
    const ui = useUiStore()
    const realtime = useRealtimeStore()
    realtime.dispatch(events.WRAPUP_REQUESTED, { reason: 'call', conversation_id: 4 })
    expect(ui.wrapUp).toEqual({ conversationId: 4, reason: 'call' })
    ui.wrapUp = null
    ui.markWrapped(5)
    realtime.dispatch(events.WRAPUP_REQUESTED, { reason: 'resolved', conversation_id: 5 })
    expect(ui.wrapUp).toBeNull()
    realtime.dispatch(events.WRAPUP_REQUESTED, { reason: 'resolved', conversation_id: 6 })
    expect(ui.wrapUp).toEqual({ conversationId: 6, reason: 'resolved' })
  })
})
