import { afterEach, describe, expect, it, vi } from 'vitest'
import { flushPromises } from '@vue/test-utils'
import * as events from '@shared/events'
import { ApiError } from '@shared/http'
import type { Call } from '@shared/types'
import { api } from '@console/api'
import CallQueueIndicator from '@console/components/CallQueueIndicator.vue'
import { setLocale } from '@console/i18n'
import { answerable, applyQueueEvent, longestWait, type QueueEntry } from '@console/lib/callQueue'
import { useAuthStore } from '@console/stores/auth'
import { useCallQueueStore } from '@console/stores/callQueue'
import { useRealtimeStore } from '@console/stores/realtime'
import { useUiStore } from '@console/stores/ui'
import { mountWith, user } from './helpers'

afterEach(() => {
  document.body.innerHTML = ''
  setLocale('en')
  vi.useRealTimers()
})

/** Mount the indicator for a signed-in agent (it loads the queue once someone is signed in). */
function mountSignedIn(options: Parameters<typeof mountWith>[1] = {}) {
  const mounted = mountWith(CallQueueIndicator, options)
  useAuthStore().accept(user({ id: 7, name: 'Me' }), 'csrf')
  return mounted
}

function entry(callId: number, enteredAt: string, overrides: Partial<QueueEntry> = {}): QueueEntry {
  return {
    call_id: callId,
    sid: `CA${callId}`,
    message_id: callId * 10,
    conversation_id: callId * 100,
    conversation_number: callId,
    customer: { id: callId, name: `Caller ${callId}` },
    from: `+4860000000${callId}`,
    channel_id: 1,
    queue: 'support',
    entered_at: enteredAt,
    wait_seconds: 0,
    position: null,
    answering: null,
    ...overrides,
  }
}

const FIRST = entry(1, '2030-01-01T10:00:00Z')
const SECOND = entry(2, '2030-01-01T10:01:30Z')

describe('the queue list', () => {
  it('adds, replaces and removes callers, longest waiting first', () => {
    let items = applyQueueEvent([], { call_id: 2, waiting: true, entry: SECOND, result: null })
    items = applyQueueEvent(items, { call_id: 1, waiting: true, entry: FIRST, result: null })
    expect(items.map((item) => item.call_id)).toEqual([1, 2])
    const answering = { agent_id: 5, name: 'Anna', since: '2030-01-01T10:02:00Z' }
    items = applyQueueEvent(items, { call_id: 1, waiting: true, entry: { ...FIRST, answering }, result: null })
    expect(items).toHaveLength(2)
    expect(answerable(items).map((item) => item.call_id)).toEqual([2])
    items = applyQueueEvent(items, { call_id: 1, waiting: false, entry: null, result: 'bridged' })
    expect(items.map((item) => item.call_id)).toEqual([2])
    expect(applyQueueEvent(items, { call_id: 9, waiting: false, entry: null, result: 'hangup' })).toEqual(items)
  })

  it('measures the longest wait', () => {
    expect(longestWait([FIRST, SECOND], Date.parse('2030-01-01T10:02:05Z'))).toBe(125)
    expect(longestWait([], Date.parse('2030-01-01T10:02:05Z'))).toBe(0)
  })
})

describe('CallQueueIndicator', () => {
  it('shows nothing while nobody waits, and asks nothing before sign-in', async () => {
    const load = vi.spyOn(api, 'callQueue').mockResolvedValue([])
    const { wrapper } = mountWith(CallQueueIndicator)
    await flushPromises()
    expect(load).not.toHaveBeenCalled()
    useAuthStore().accept(user({ id: 7 }), 'csrf')
    await flushPromises()
    expect(load).toHaveBeenCalledTimes(1)
    expect(wrapper.find('[data-testid="call-queue"]').exists()).toBe(false)
  })

  it('shows the waiting callers, answers the next one and follows the socket', async () => {
    vi.useFakeTimers({ toFake: ['Date', 'setInterval', 'clearInterval'] })
    vi.setSystemTime(new Date('2030-01-01T10:02:05Z'))
    vi.spyOn(api, 'callQueue').mockResolvedValue([SECOND, FIRST])
    const answerings = { agent_id: 7, name: 'Me', since: '2030-01-01T10:02:06Z' }
    const answer = vi.spyOn(api, 'answerQueue').mockResolvedValue({
      call: { id: 1, sid: 'CA1', status: 'ringing' } as Call,
      entry: { ...FIRST, answering: answerings },
      agent_call_sid: 'CAagent',
      ringing: '+48600100200',
    })
    const { wrapper } = mountSignedIn({ attachTo: document.body })
    await flushPromises()
    const button = wrapper.get('[data-testid="call-queue-answer"]')
    expect(wrapper.get('.count').text()).toBe('2')
    expect(button.attributes('aria-label')).toBe('2 callers waiting, longest 2:05: answer the next caller')
    expect(wrapper.text()).toContain('Answer')

    vi.advanceTimersByTime(10_000)
    await flushPromises()
    expect(wrapper.get('.call-queue-wait').text()).toBe('2:15')

    await button.trigger('click')
    await flushPromises()
    expect(answer).toHaveBeenCalledWith(undefined)
    expect(useUiStore().toasts.map((toast) => toast.text)).toContain(
      'Your phone is ringing: pick up to talk to the caller.',
    )
    expect(useCallQueueStore().items[0].answering).toEqual(answerings)

    const realtime = useRealtimeStore()
    realtime.dispatch(events.CALL_QUEUE_UPDATED, {
      call_id: 2,
      waiting: true,
      entry: { ...SECOND, answering: { agent_id: 8, name: 'Bob', since: null } },
      result: null,
    })
    await flushPromises()
    expect(wrapper.get('[data-testid="call-queue-answer"]').attributes('disabled')).toBeDefined()
    expect(wrapper.text()).toContain('Answering')

    realtime.dispatch(events.CALL_QUEUE_UPDATED, { call_id: 1, waiting: false, entry: null, result: 'bridged' })
    realtime.dispatch(events.CALL_QUEUE_UPDATED, { call_id: 2, waiting: false, entry: null, result: 'hangup' })
    await flushPromises()
    expect(wrapper.find('[data-testid="call-queue"]').exists()).toBe(false)
  })

  it('reports a refusal and reloads the queue', async () => {
    const load = vi.spyOn(api, 'callQueue').mockResolvedValue([FIRST])
    vi.spyOn(api, 'answerQueue').mockRejectedValue(
      new ApiError(409, 'queue_empty', 'every waiting caller is already being answered'),
    )
    const { wrapper } = mountSignedIn()
    await flushPromises()
    await wrapper.get('[data-testid="call-queue-answer"]').trigger('click')
    await flushPromises()
    const toast = useUiStore().toasts.at(-1)
    expect(toast?.kind).toBe('error')
    expect(toast?.text).toBe('every waiting caller is already being answered')
    expect(load).toHaveBeenCalledTimes(2)
  })

  it('speaks Polish', async () => {
    vi.spyOn(api, 'callQueue').mockResolvedValue([FIRST, SECOND, entry(3, '2030-01-01T10:02:00Z')])
    const { wrapper } = mountSignedIn()
    setLocale('pl')
    await flushPromises()
    const label = wrapper.get('[data-testid="call-queue-answer"]').attributes('aria-label')
    expect(label).toMatch(/^3 osoby czekają, najdłużej /)
    expect(wrapper.text()).toContain('Odbierz')
  })
})
