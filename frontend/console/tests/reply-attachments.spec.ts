import { afterEach, describe, expect, it, vi } from 'vitest'
import { flushPromises } from '@vue/test-utils'
import { api, http, messageForm } from '@console/api'
import ReplyBox from '@console/components/ReplyBox.vue'
import { setLocale } from '@console/i18n'
import { useAuthStore } from '@console/stores/auth'
import { useConversationStore } from '@console/stores/conversation'
import type { ChannelKind } from '@shared/types'
import { conversation, identity, message, mountWith, user } from './helpers'

afterEach(() => {
  document.body.innerHTML = ''
  setLocale('en')
  vi.unstubAllGlobals()
})

const LIMITS = { channels: ['email', 'chat', 'api'], max_files: 3, max_file_bytes: 1000, max_total_bytes: 1500 }

function file(name: string, size: number, type = 'application/pdf'): File {
  return new File([new Uint8Array(size)], name, { type })
}

function setup(lastChannel: ChannelKind = 'email') {
  const mounted = mountWith(ReplyBox, {
    props: {
      conversation: conversation({ id: 1, last_channel: lastChannel, ...{ reply_attachments: LIMITS } }),
      identities: [identity(), identity({ kind: 'phone', value: '+48600100200' })],
      customerName: 'Anna Kowalska',
    },
    attachTo: document.body,
  })
  useAuthStore().accept(user({ id: 7, name: 'Ola Nowak' }), 'csrf')
  useConversationStore().conversation = conversation({ id: 1 })
  return mounted
}

async function pick(wrapper: ReturnType<typeof setup>['wrapper'], files: File[]): Promise<void> {
  const input = wrapper.find('[data-testid="attach-input"]')
  Object.defineProperty(input.element, 'files', { value: files, configurable: true })
  await input.trigger('change')
}

function chips(wrapper: ReturnType<typeof setup>['wrapper']): string[] {
  return wrapper.findAll('.reply-file-name').map((chip) => chip.text())
}

describe('ReplyBox attachments', () => {
  it('opens the file picker from the attach button', async () => {
    const { wrapper } = setup()
    const click = vi.spyOn(wrapper.find('[data-testid="attach-input"]').element as HTMLInputElement, 'click')
    await wrapper.find('[data-testid="attach"]').trigger('click')
    expect(click).toHaveBeenCalled()
  })

  it('shows picked files as chips, removes one before sending, and sends the rest with the reply', async () => {
    const send = vi.spyOn(api, 'sendMessage').mockResolvedValue(message({ id: 9, direction: 'out' }))
    const { wrapper } = setup()
    const invoice = file('invoice.pdf', 400)
    const photo = file('photo.png', 200, 'image/png')
    await pick(wrapper, [invoice, photo])
    expect(chips(wrapper)).toEqual(['invoice.pdf', 'photo.png'])
    expect(wrapper.find('[data-testid="reply-files"]').text()).toContain('400 byte')

    await wrapper.findAll('[data-testid="remove-file"]')[1].trigger('click')
    expect(chips(wrapper)).toEqual(['invoice.pdf'])
    expect(wrapper.find('[data-testid="remove-file"]').attributes('aria-label')).toBe('Remove invoice.pdf')
    // A file alone is enough to send.
    expect(wrapper.find('[data-testid="send"]').attributes('disabled')).toBeUndefined()
    await wrapper.find('[data-testid="reply-text"]').setValue('Your invoice')
    await wrapper.find('form').trigger('submit')
    await flushPromises()

    expect(send).toHaveBeenCalledWith(1, { body: 'Your invoice', channel: 'email', private: false, files: [invoice] })
    expect(chips(wrapper)).toEqual([])
  })

  it('keeps files out that break the limits and says why', async () => {
    const { wrapper } = setup()
    await pick(wrapper, [file('huge.pdf', 1001), file('a.pdf', 900), file('b.pdf', 700)])
    expect(chips(wrapper)).toEqual(['a.pdf'])
    expect(wrapper.find('.error').text()).toContain('huge.pdf is larger than')
    expect(wrapper.find('.error').text()).toContain('b.pdf does not fit')
    await pick(wrapper, [file('c.txt', 10), file('d.txt', 10), file('e.txt', 10)])
    expect(chips(wrapper)).toEqual(['a.pdf', 'c.txt', 'd.txt'])
    expect(wrapper.find('.error').text()).toBe('At most 3 files per message.')
  })

  it('will not send files by SMS, but a note or an email may carry them', async () => {
    const { wrapper } = setup('sms')
    expect((wrapper.find('[data-testid="reply-channel"]').element as HTMLSelectElement).value).toBe('sms')
    await pick(wrapper, [file('label.pdf', 100)])
    expect(wrapper.find('[data-testid="files-blocked"]').text()).toContain('via SMS')
    expect(wrapper.find('[data-testid="send"]').attributes('disabled')).toBeDefined()

    await wrapper.find('[data-testid="reply-channel"]').setValue('email')
    expect(wrapper.find('[data-testid="files-blocked"]').exists()).toBe(false)
    expect(wrapper.find('[data-testid="send"]').attributes('disabled')).toBeUndefined()
    await wrapper.find('[data-testid="reply-channel"]').setValue('sms')
    await wrapper.find('[data-testid="mode-note"]').trigger('click')
    expect(wrapper.find('[data-testid="send"]').attributes('disabled')).toBeUndefined()
  })

  it('speaks Polish', async () => {
    const { wrapper } = setup('sms')
    setLocale('pl')
    await pick(wrapper, [file('etykieta.pdf', 100)])
    expect(wrapper.find('[data-testid="attach"]').text()).toContain('Dołącz pliki')
    expect(wrapper.find('[data-testid="files-blocked"]').text()).toContain('Plików nie można wysłać przez SMS')
  })
})

describe('sending a reply with files', () => {
  it('posts multipart form data without a JSON content type, and plain JSON without files', async () => {
    const fetchMock = vi.fn(async () => new Response(JSON.stringify({ id: 5 }), { status: 201 }))
    vi.stubGlobal('fetch', fetchMock)
    http.csrfToken = 'csrf'
    const invoice = file('invoice.pdf', 10)

    await api.sendMessage(3, { body: 'Invoice', channel: 'email', private: false, files: [invoice] })
    await api.sendMessage(3, { body: 'No files', channel: 'email', private: false, files: [] })

    const [url, init] = fetchMock.mock.calls[0] as unknown as [string, RequestInit]
    expect(url).toBe('/api/v1/conversations/3/messages')
    const headers = init.headers as Record<string, string>
    expect(headers['Content-Type']).toBeUndefined()
    expect(headers['X-CSRF-Token']).toBe('csrf')
    const form = init.body as FormData
    expect(form).toBeInstanceOf(FormData)
    expect([form.get('body'), form.get('channel'), form.get('private')]).toEqual(['Invoice', 'email', 'false'])
    expect((form.getAll('files') as File[]).map((f) => f.name)).toEqual(['invoice.pdf'])
    const plain = (fetchMock.mock.calls[1] as unknown as [string, RequestInit])[1]
    expect((plain.headers as Record<string, string>)['Content-Type']).toBe('application/json')
    expect(JSON.parse(plain.body as string)).toEqual({ body: 'No files', channel: 'email', private: false })
  })

  it('marks a note with files as private', () => {
    const form = messageForm({ body: '', private: true, files: [file('a.pdf', 1), file('b.pdf', 1)] })
    expect(form.get('private')).toBe('true')
    expect(form.get('channel')).toBeNull()
    expect(form.getAll('files')).toHaveLength(2)
  })
})
