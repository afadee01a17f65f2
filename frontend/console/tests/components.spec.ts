import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { flushPromises } from '@vue/test-utils'
import { api } from '@console/api'
import ConversationList from '@console/components/ConversationList.vue'
import CustomerSidebar from '@console/components/CustomerSidebar.vue'
import EmailBody from '@console/components/EmailBody.vue'
import InboxFilters from '@console/components/InboxFilters.vue'
import LocaleSwitch from '@console/components/LocaleSwitch.vue'
import MergeDialog from '@console/components/MergeDialog.vue'
import MessageItem from '@console/components/MessageItem.vue'
import ReplyBox from '@console/components/ReplyBox.vue'
import WrapUpDialog from '@console/components/WrapUpDialog.vue'
import { setLocale } from '@console/i18n'
import { defaultFilters } from '@console/stores/inbox'
import { useAuthStore } from '@console/stores/auth'
import { useConversationStore } from '@console/stores/conversation'
import { useCustomerStore } from '@console/stores/customer'
import { useDirectoryStore } from '@console/stores/directory'
import { useUiStore } from '@console/stores/ui'
import { conversation, customer, identity, message, mountWith, user } from './helpers'

beforeEach(() => {
  localStorage.clear()
  // jsdom lays nothing out; give scroll containers a viewport so the virtual list has rows to show.
  vi.spyOn(HTMLElement.prototype, 'clientHeight', 'get').mockReturnValue(760)
  vi.spyOn(HTMLElement.prototype, 'clientWidth', 'get').mockReturnValue(320)
})

afterEach(() => {
  document.body.innerHTML = ''
  setLocale('en')
})

describe('ConversationList', () => {
  const many = Array.from({ length: 10_000 }, (_, i) =>
    conversation({ id: i + 1, customer: { id: i + 1, name: `Customer ${i + 1}` } }),
  )

  it('renders only the rows in view out of 10,000', () => {
    const { wrapper } = mountWith(ConversationList, {
      props: { items: many, selectedId: 1, activeId: null, unread: { 2: 3 }, hasMore: false, label: 'Mine' },
    })
    const rows = wrapper.findAll('[role="option"]')
    expect(rows.length).toBeGreaterThan(5)
    expect(rows.length).toBeLessThan(40)
    expect(rows[0].text()).toContain('Customer 1')
    expect(rows[0].attributes('aria-selected')).toBe('true')
    expect(rows[1].find('.unread-count').text()).toBe('3')
    expect(rows[1].find('.unread-count').attributes('aria-label')).toBe('3 unread messages')
    expect(wrapper.find('[role="listbox"]').attributes('aria-activedescendant')).toBe('conversation-row-1')
  })

  it('opens a conversation on click and asks for more near the end', async () => {
    const few = many.slice(0, 12)
    const { wrapper } = mountWith(ConversationList, {
      props: { items: few, selectedId: null, activeId: null, unread: {}, hasMore: true, label: 'All' },
    })
    await wrapper.findAll('[role="option"]')[2].trigger('click')
    expect(wrapper.emitted('open')?.[0]).toEqual([3])
    await wrapper.setProps({ items: many.slice(0, 13) })
    expect(wrapper.emitted('loadMore')).toBeTruthy()
  })
})

describe('MessageItem', () => {
  it('shows an outbound failure with its reason', () => {
    const { wrapper } = mountWith(MessageItem, {
      props: {
        message: message({ direction: 'out', channel: 'sms', delivery_status: 'failed', error: 'Unreachable number', text: 'Hi' }),
        authorName: 'Ola',
      },
    })
    expect(wrapper.find('[data-channel="sms"]').text()).toBe('SMS')
    expect(wrapper.find('.delivery').text()).toContain('Failed')
    expect(wrapper.find('.delivery').text()).toContain('Unreachable number')
    expect(wrapper.find('.message-author').text()).toBe('Ola')
  })

  it('shows delivered ticks, notes and calls with duration, recording and transcript', () => {
    const delivered = mountWith(MessageItem, {
      props: { message: message({ direction: 'out', delivery_status: 'delivered', channel: 'sms' }) },
    }).wrapper
    expect(delivered.find('.delivery-symbol').text()).toBe('✓✓')

    const note = mountWith(MessageItem, {
      props: { message: message({ kind: 'note', direction: 'out', private: true, text: '@Bartek look' }) },
    }).wrapper
    expect(note.classes()).toContain('message-note')
    expect(note.find('[data-channel="note"]').exists()).toBe(true)
    expect(note.find('.delivery').exists()).toBe(false)

    const call = mountWith(MessageItem, {
      props: {
        message: message({
          kind: 'call',
          channel: 'voice',
          text: 'Incoming call: completed',
          call: {
            id: 1, sid: 'CA1', direction: 'in', status: 'completed', from: '+48600', to: '+48700', agent_id: null,
            started_at: null, answered_at: null, ended_at: null, duration: 65,
            recording_url: '/api/v1/calls/1/recording', recording_duration: 60, voicemail: false,
            transcription: 'I would like a refund',
          },
        }),
      },
    }).wrapper
    expect(call.find('[data-channel="call"]').exists()).toBe(true)
    expect(call.find('.call-duration').text()).toContain('1:05')
    expect(call.find('audio').attributes('aria-label')).toBe('Call recording')
    expect(call.find('.call-transcript').text()).toContain('I would like a refund')
  })
})

describe('EmailBody', () => {
  it('renders sanitised HTML in a shadow root with images blocked until switched on', async () => {
    const { wrapper } = mountWith(EmailBody, {
      props: {
        html: '<p>Order <b>#12</b></p><img src="https://cdn.example/a.png"><div class="gmail_quote">On Mon wrote: old</div>',
        text: '',
      },
    })
    const host = wrapper.find('[data-testid="email-html"]').element as HTMLElement
    expect(host.shadowRoot?.innerHTML).toContain('<b>#12</b>')
    expect(host.shadowRoot?.querySelector('img')?.getAttribute('src')).toBeNull()
    expect(host.shadowRoot?.querySelector('details summary')?.textContent).toBe('Show quoted history')
    const toggle = wrapper.find('input[type="checkbox"]')
    expect(wrapper.find('.email-tools').text()).toContain('1 remote image blocked')
    await toggle.setValue(true)
    expect(host.shadowRoot?.querySelector('img')?.getAttribute('src')).toBe('https://cdn.example/a.png')
  })
})

describe('ReplyBox', () => {
  function setup(identities = [identity(), identity({ kind: 'phone', value: '+48600100200' })], extra = {}) {
    const mounted = mountWith(ReplyBox, {
      props: {
        conversation: conversation({ id: 1, last_channel: 'sms', ...extra }),
        identities,
        customerName: 'Anna Kowalska',
      },
      attachTo: document.body,
    })
    const auth = useAuthStore()
    auth.accept(user({ id: 7, name: 'Ola Nowak' }), 'csrf')
    const directory = useDirectoryStore()
    directory.users = [user({ id: 7, name: 'Ola Nowak' }), user({ id: 8, name: 'Bartek Zieliński' })]
    directory.canned = [
      { id: 1, shortcut: 'thanks', title: 'Thank you', body: 'Thank you, {{customer.first_name}}! — {{agent.first_name}}', created_at: null, updated_at: null },
    ]
    useConversationStore().conversation = conversation({ id: 1 })
    return mounted
  }

  it('offers the customer’s channels and preselects the one they last used', () => {
    const { wrapper } = setup()
    const options = wrapper.findAll('[data-testid="reply-channel"] option').map((o) => o.attributes('value'))
    expect(options).toEqual(['email', 'sms'])
    expect((wrapper.find('[data-testid="reply-channel"]').element as HTMLSelectElement).value).toBe('sms')
  })

  it('uses the server’s reply channels when the conversation carries them', () => {
    const { wrapper } = setup([identity()], { reply_channels: ['email', 'chat'], default_reply_channel: 'chat' })
    const select = wrapper.find('[data-testid="reply-channel"]').element as HTMLSelectElement
    expect([...select.options].map((o) => o.value)).toEqual(['email', 'chat'])
    expect(select.value).toBe('chat')
  })

  it('warns when there is no channel to reply on, but still allows notes', async () => {
    const { wrapper } = setup([])
    expect(wrapper.find('.warning').exists()).toBe(true)
    await wrapper.find('[data-testid="reply-text"]').setValue('x')
    expect(wrapper.find('[data-testid="send"]').attributes('disabled')).toBeDefined()
    await wrapper.find('[data-testid="mode-note"]').trigger('click')
    expect(wrapper.find('[data-testid="send"]').attributes('disabled')).toBeUndefined()
  })

  it('sends with Ctrl+Enter on the chosen channel', async () => {
    const send = vi.spyOn(api, 'sendMessage').mockResolvedValue(message({ id: 9, direction: 'out', delivery_status: 'queued' }))
    const { wrapper } = setup()
    const box = wrapper.find('[data-testid="reply-text"]')
    await box.setValue('Your parcel left today.')
    await box.trigger('keydown', { key: 'Enter', ctrlKey: true })
    await flushPromises()
    expect(send).toHaveBeenCalledWith(1, { body: 'Your parcel left today.', channel: 'sms', private: false })
    expect((box.element as HTMLTextAreaElement).value).toBe('')
  })

  it('mentions a colleague in a private note', async () => {
    const send = vi.spyOn(api, 'sendMessage').mockResolvedValue(message({ id: 9, kind: 'note' }))
    const { wrapper } = setup()
    await wrapper.find('[data-testid="mode-note"]').trigger('click')
    const box = wrapper.find('[data-testid="reply-text"]')
    const area = box.element as HTMLTextAreaElement
    area.value = 'Please check @Bar'
    area.setSelectionRange(area.value.length, area.value.length)
    await box.trigger('input')
    const options = wrapper.findAll('.popup [role="option"]')
    expect(options.map((o) => o.text())).toEqual([expect.stringContaining('Bartek Zieliński')])
    await box.trigger('keydown', { key: 'Enter' })
    expect(area.value).toBe('Please check @Bartek Zieliński ')
    await wrapper.find('form').trigger('submit')
    await flushPromises()
    expect(send).toHaveBeenCalledWith(1, { body: 'Please check @Bartek Zieliński ', private: true })
  })

  it('inserts a canned response with its placeholders filled', async () => {
    const { wrapper } = setup()
    const box = wrapper.find('[data-testid="reply-text"]')
    const area = box.element as HTMLTextAreaElement
    area.value = '/tha'
    area.setSelectionRange(4, 4)
    await box.trigger('input')
    expect(wrapper.find('.popup').text()).toContain('/thanks')
    await wrapper.find('.popup [role="option"]').trigger('mousedown')
    expect(area.value).toBe('Thank you, Anna! — Ola')
  })
})

describe('CustomerSidebar', () => {
  it('lists identities with verified marks and adds a phone number', async () => {
    vi.spyOn(api, 'customer').mockResolvedValue(
      customer({
        identities: [identity(), identity({ kind: 'phone', value: '+48600100200', verified: false })],
        topics: [{ id: 3, name: 'Delivery late', count: 2 }],
      }),
    )
    vi.spyOn(api, 'customerConversations').mockResolvedValue({
      items: [conversation({ id: 1, origin_channel: 'email' }), conversation({ id: 2, origin_channel: 'sms', status: 'resolved' })],
      next_cursor: null,
    })
    const add = vi.spyOn(api, 'addIdentity').mockResolvedValue(identity({ kind: 'phone', value: '+48600999888' }))
    const { wrapper } = mountWith(CustomerSidebar, { props: { conversationId: 1 } })
    await useCustomerStore().load(1)
    await flushPromises()
    const rows = wrapper.findAll('[data-testid="identities"] li')
    expect(rows[0].find('.identity-mark').classes()).toContain('verified')
    expect(rows[1].find('.identity-mark').classes()).toContain('unverified')
    expect(rows[1].text()).toContain('Not verified')
    expect(wrapper.findAll('[data-testid="customer-history"] li')).toHaveLength(2)
    expect(wrapper.text()).toContain('Delivery late')
    await wrapper.find('[data-testid="identity-value"]').setValue('+48 600 999 888')
    await wrapper.find('form.add-identity').trigger('submit')
    await flushPromises()
    expect(add).toHaveBeenCalledWith(1, 'phone', '+48 600 999 888')
  })
})

describe('MergeDialog', () => {
  it('searches, asks to confirm, then merges the duplicate in', async () => {
    vi.useFakeTimers()
    const search = vi.spyOn(api, 'customers').mockResolvedValue([
      customer({ id: 1 }),
      customer({ id: 2, name: 'Anna K.', identities: [identity({ kind: 'phone', value: '+48600100200' })] }),
    ])
    const merge = vi.spyOn(api, 'mergeCustomer').mockResolvedValue(customer())
    vi.spyOn(api, 'customer').mockResolvedValue(customer())
    vi.spyOn(api, 'customerConversations').mockResolvedValue({ items: [], next_cursor: null })
    const { wrapper } = mountWith(MergeDialog, { props: { open: true, target: customer({ id: 1 }) }, attachTo: document.body })
    useCustomerStore().customer = customer({ id: 1 })
    const input = document.querySelector<HTMLInputElement>('[data-testid="merge-search"]')!
    input.value = 'Anna'
    input.dispatchEvent(new Event('input'))
    await vi.advanceTimersByTimeAsync(300)
    vi.useRealTimers()
    await flushPromises()
    expect(search).toHaveBeenCalledWith('Anna')
    const candidates = document.querySelectorAll<HTMLButtonElement>('[data-testid="merge-candidate"]')
    expect(candidates).toHaveLength(1) // never offers the customer itself
    candidates[0].click()
    await flushPromises()
    expect(document.querySelector('[data-testid="merge-confirm-text"]')?.textContent).toContain('Merge Anna K. into Anna Kowalska?')
    document.querySelector<HTMLButtonElement>('[data-testid="merge-confirm"]')!.click()
    await flushPromises()
    expect(merge).toHaveBeenCalledWith(1, 2)
    expect(wrapper.emitted('merged')).toBeTruthy()
  })
})

describe('WrapUpDialog', () => {
  it('insists on a topic where the rules require one', async () => {
    vi.spyOn(api, 'conversation').mockResolvedValue(conversation({ id: 5 }))
    vi.spyOn(api, 'wrapup').mockResolvedValue({ conversation_id: 5, topic_required: true, topics: [], suggestions: [] })
    mountWith(WrapUpDialog, { attachTo: document.body })
    useUiStore().requestWrapUp(5, 'resolve')
    await flushPromises()
    expect(document.querySelector('[data-testid="wrapup-skip"]')?.hasAttribute('disabled')).toBe(true)
    expect(document.querySelector('[data-testid="wrapup-resolve"]')?.hasAttribute('disabled')).toBe(true)
    expect(document.querySelector('[role="dialog"]')?.textContent).toContain('needs a topic')
  })

  it('asks for a topic, saves it, then resolves', async () => {
    const setTopics = vi
      .spyOn(api, 'setTopics')
      .mockResolvedValue({ topic_ids: [2], topics: [{ id: 2, name: 'Delivery late', colour: '#0f0', parent_id: null }] })
    vi.spyOn(api, 'wrapup').mockResolvedValue({
      conversation_id: 4,
      topic_required: false,
      topics: [],
      suggestions: [{ topic: { id: 1, name: 'Payment', colour: '#f00', parent_id: null }, path: 'Payment', score: 0.7 }],
    })
    const patch = vi.spyOn(api, 'patchConversation').mockResolvedValue(conversation({ id: 4, status: 'resolved' }))
    vi.spyOn(api, 'conversation').mockResolvedValue(conversation({ id: 4 }))
    mountWith(WrapUpDialog, { attachTo: document.body })
    const directory = useDirectoryStore()
    directory.topics = [
      { id: 1, name: 'Payment', parent_id: null, colour: '#f00', archived: false },
      { id: 2, name: 'Delivery late', parent_id: null, colour: '#0f0', archived: false },
      { id: 3, name: 'Old', parent_id: null, colour: '#00f', archived: true },
    ]
    const ui = useUiStore()
    ui.requestWrapUp(4, 'resolve')
    await flushPromises()
    const labels = [...document.querySelectorAll('.topic-options label')].map((label) => label.textContent?.trim())
    expect(labels).toEqual(['Delivery late', 'Payment']) // archived topics are not offered
    // the suggester's pick is one click away
    expect(document.querySelector('[data-testid="topic-suggestions"]')?.textContent).toContain('Payment')
    document.querySelectorAll<HTMLInputElement>('.topic-options input')[0].click()
    await flushPromises()
    document.querySelector<HTMLButtonElement>('[data-testid="wrapup-resolve"]')!.click()
    await flushPromises()
    expect(setTopics).toHaveBeenCalledWith(4, [2])
    expect(patch).toHaveBeenCalledWith(4, { status: 'resolved' })
    expect(ui.wrapUp).toBeNull()
    expect(ui.recentlyWrapped(4)).toBe(true)
  })
})

describe('InboxFilters and language', () => {
  it('switches views and statuses', async () => {
    const { wrapper } = mountWith(InboxFilters, { props: { view: 'mine', filters: defaultFilters() } })
    await wrapper.find('[data-testid="view-unassigned"]').trigger('click')
    expect(wrapper.emitted('change')?.[0]).toEqual(['unassigned', defaultFilters()])
    await wrapper.find('[data-testid="filter-status"]').setValue('pending')
    expect(wrapper.emitted('change')?.[1]).toEqual(['mine', { ...defaultFilters(), status: 'pending' }])
  })

  it('switches the whole UI to Polish', async () => {
    const { wrapper } = mountWith({
      components: { InboxFilters, LocaleSwitch },
      template: '<div><LocaleSwitch /><InboxFilters view="mine" :filters="filters" /></div>',
      data: () => ({ filters: defaultFilters() }),
    })
    expect(wrapper.find('[data-testid="view-unassigned"]').text()).toBe('Unassigned')
    await wrapper.find('[data-testid="locale"]').setValue('pl')
    expect(wrapper.find('[data-testid="view-unassigned"]').text()).toBe('Nieprzypisane')
    expect(document.documentElement.lang).toBe('pl')
    expect(localStorage.getItem('switchboard.locale')).toBe('pl')
  })
})
