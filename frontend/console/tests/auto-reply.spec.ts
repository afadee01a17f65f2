// The admin's auto-reply editor for email channels, against a fake server behind fetch.
import { afterEach, describe, expect, it, vi } from 'vitest'
import { flushPromises } from '@vue/test-utils'
import type { Channel } from '@shared/types'
import { setLocale } from '@console/i18n'
import { useDirectoryStore } from '@console/stores/directory'
import AdminView from '@console/views/AdminView.vue'
import { mountWith } from './helpers'

afterEach(() => {
  document.body.innerHTML = ''
  setLocale('en')
  vi.unstubAllGlobals()
})

function channel(id: number, overrides: Partial<Channel> = {}): Channel {
  return {
    id,
    kind: 'email',
    name: 'Support',
    address: 'support@example.com',
    settings: { from_name: 'Acme Support' },
    business_hours: null,
    team_id: null,
    enabled: true,
    created_at: null,
    ...overrides,
  }
}

interface Request {
  method: string
  url: string
  body: unknown
}

/** Stub fetch: PATCH answers ``patched`` (status, body); everything else an empty list. */
function serve(patched: { status: number; body: unknown }): Request[] {
  const requests: Request[] = []
  vi.stubGlobal(
    'fetch',
    vi.fn(async (url: string, init?: RequestInit) => {
      const method = init?.method ?? 'GET'
      requests.push({ method, url, body: init?.body ? JSON.parse(String(init.body)) : null })
      const { status, body } = method === 'PATCH' ? patched : { status: 200, body: [] }
      return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } })
    }),
  )
  return requests
}

async function openChannels(channels: Channel[]) {
  const mounted = mountWith(AdminView)
  useDirectoryStore().channels = channels
  await mounted.router.push('/admin/channels')
  await flushPromises()
  return mounted
}

describe('AdminView: auto-reply of an email channel', () => {
  it('shows each email channel’s auto-reply and turns one on, keeping the other settings', async () => {
    const requests = serve({ status: 200, body: channel(1) })
    const { wrapper } = await openChannels([
      channel(1),
      channel(2, { name: 'Sales', settings: { auto_reply: { text: 'Closed', when: 'outside_hours' } } }),
      channel(3, { kind: 'sms', name: 'Texts', address: '+48600100200', settings: {} }),
    ])
    const buttons = wrapper.findAll('button[aria-label^="Auto-reply of"]')
    expect(buttons.map((button) => [button.attributes('aria-label'), button.text()])).toEqual([
      ['Auto-reply of Support', 'Off'],
      ['Auto-reply of Sales', 'Outside business hours'],
    ]) // none for SMS

    await buttons[0].trigger('click')
    const form = wrapper.get('[data-testid="auto-reply-form"]')
    expect(form.find('textarea').exists()).toBe(false) // off: nothing to write
    await form.get('select').setValue('always')
    await form.get('textarea').setValue('Thanks, {{ customer.first_name }}!')
    await form.trigger('submit')
    await flushPromises()

    const patch = requests.find((request) => request.method === 'PATCH')
    expect(patch?.url).toBe('/api/v1/channels/1')
    expect(patch?.body).toEqual({
      settings: { from_name: 'Acme Support', auto_reply: { text: 'Thanks, {{ customer.first_name }}!', when: 'always' } },
    })
    expect(wrapper.find('[data-testid="auto-reply-form"]').exists()).toBe(false)
  })

  it('turns it off with null, and shows the server’s refusal next to the form', async () => {
    const refusal = {
      error: {
        code: 'validation_failed',
        message: 'unknown placeholder',
        fields: { 'settings.auto_reply.text': 'unknown placeholder(s): agent.name' },
      },
    }
    const requests = serve({ status: 422, body: refusal })
    const { wrapper } = await openChannels([channel(2, { settings: { auto_reply: { text: 'Hi {{ agent.name }}' } } })])
    await wrapper.get('button[aria-label="Auto-reply of Support"]').trigger('click')
    const form = wrapper.get('[data-testid="auto-reply-form"]')
    expect((form.get('textarea').element as HTMLTextAreaElement).value).toBe('Hi {{ agent.name }}')
    await form.trigger('submit')
    await flushPromises()
    expect(wrapper.get('[role="alert"]').text()).toContain('settings.auto_reply.text: unknown placeholder(s): agent.name')
    expect(wrapper.find('[data-testid="auto-reply-form"]').exists()).toBe(true) // kept, to fix and save again

    await form.get('select').setValue('off')
    await form.trigger('submit')
    await flushPromises()
    expect(requests.filter((request) => request.method === 'PATCH').at(-1)?.body).toEqual({
      settings: { auto_reply: null },
    })
  })
})
