import { describe, expect, it } from 'vitest'
import { renderCanned } from '@console/lib/canned'
import { defaultReplyChannel, replyChannels } from '@console/lib/channels'
import { renderEmailHtml, sanitizeEmail, splitQuotedHtml, splitQuotedText } from '@console/lib/email'
import { formatBytes, formatDuration, initials, relativeTime } from '@console/lib/format'
import { shortcutFor } from '@console/lib/keyboard'
import { humanDuration, MAX_SERIES, toChartData, topicTableRows } from '@console/lib/report'
import { compareConversations, insertionIndex, upsertSorted } from '@console/lib/sort'
import { conversation, identity } from './helpers'

describe('inbox order', () => {
  it('sorts newest activity first and breaks ties by id', () => {
    const older = conversation({ id: 1, last_activity_at: '2030-01-01T10:00:00Z' })
    const newer = conversation({ id: 2, last_activity_at: '2030-01-01T11:00:00Z' })
    const tie = conversation({ id: 3, last_activity_at: '2030-01-01T11:00:00Z' })
    expect([older, newer, tie].sort(compareConversations).map((c) => c.id)).toEqual([3, 2, 1])
  })

  it('moves an updated conversation to its new place without duplicating it', () => {
    const list = [3, 2, 1].map((id) => conversation({ id, last_activity_at: `2030-01-01T1${id}:00:00Z` }))
    const bumped = { ...list[2], last_activity_at: '2030-01-02T00:00:00Z' }
    expect(upsertSorted(list, bumped).map((c) => c.id)).toEqual([1, 3, 2])
    expect(insertionIndex(list, conversation({ id: 9, last_activity_at: '2029-01-01T00:00:00Z' }))).toBe(3)
  })
})

describe('email rendering', () => {
  it('removes scripts, event handlers and javascript links', () => {
    const { html } = sanitizeEmail(
      '<p onclick="x()">Hi<script>alert(1)</script></p><a href="javascript:alert(1)">x</a><style>p{}</style>',
      { showImages: true },
    )
    expect(html).not.toMatch(/script|onclick|javascript|<style/i)
    expect(html).toContain('<p>Hi</p>')
  })

  it('blocks remote images until asked, and opens links in a new tab', () => {
    const source = '<p>Look <img src="https://tracker.example/pixel.gif"> <a href="https://shop.example">shop</a></p>'
    const blocked = renderEmailHtml(source, { showImages: false })
    expect(blocked.blockedImages).toBe(1)
    expect(blocked.html).not.toMatch(/\ssrc="https:\/\/tracker/)
    expect(blocked.html).toContain('data-blocked-src')
    expect(blocked.html).toContain('rel="noopener noreferrer nofollow"')
    const shown = renderEmailHtml(source, { showImages: true })
    expect(shown.html).toContain('src="https://tracker.example/pixel.gif"')
    expect(shown.blockedImages).toBe(0)
  })

  it('shows inline cid: images from the message attachments', () => {
    const { html } = sanitizeEmail('<img src="cid:logo@x">', { showImages: false, inlineImages: { 'logo@x': '/api/v1/attachments/7' } })
    expect(html).toContain('src="/api/v1/attachments/7"')
  })

  it('strips url() backgrounds in styles while images are blocked', () => {
    const { html, blocked } = sanitizeEmail('<div style="background:url(https://x.example/a.png)">x</div>', { showImages: false })
    expect(html).not.toContain('x.example')
    expect(blocked).toBe(1)
  })

  it('folds a Gmail quote into the history part', () => {
    const { main, quoted } = splitQuotedHtml(
      '<div>Thanks, that worked!</div><div class="gmail_quote"><div>On Mon, Anna wrote:</div><blockquote>old</blockquote></div>',
    )
    expect(main).toContain('Thanks, that worked!')
    expect(main).not.toContain('old')
    expect(quoted).toContain('old')
  })

  it('keeps a message that is nothing but a quote whole', () => {
    const { main, quoted } = splitQuotedHtml('<blockquote>only a forward</blockquote>')
    expect(quoted).toBeNull()
    expect(main).toContain('only a forward')
  })

  it('folds plain-text quotes after the attribution line', () => {
    const text = 'New answer\n\nOn Tue, 1 Jan 2030, Anna <a@x> wrote:\n> earlier\n> more'
    expect(splitQuotedText(text)).toEqual({ main: 'New answer', quoted: 'On Tue, 1 Jan 2030, Anna <a@x> wrote:\n> earlier\n> more' })
    expect(splitQuotedText('W dniu 1.01.2030 Anna pisze:\n> x').quoted).toBeNull() // nothing new above it
    expect(splitQuotedText('> a\n> b').quoted).toBeNull()
    expect(splitQuotedText('Tak\nW dniu 1.01.2030 Anna pisze:\n> x').main).toBe('Tak')
  })
})

describe('canned responses', () => {
  it('fills the customer and agent placeholders and leaves unknown ones visible', () => {
    const text = renderCanned('Hi {{customer.first_name}}, {{ agent.first_name }} here about #{{conversation.number}} {{x.y}}', {
      customer: { name: 'Anna Kowalska' },
      agent: { name: 'Bartek Nowak' },
      conversation: { id: 5, number: 42 },
    })
    expect(text).toBe('Hi Anna, Bartek here about #42 {{x.y}}')
  })
})

describe('reply channels', () => {
  it('offers only the channels the customer has an identity for', () => {
    const ids = [identity({ kind: 'email' }), identity({ kind: 'phone', value: '+48600000000' })]
    expect(replyChannels(ids)).toEqual(['email', 'sms'])
    expect(replyChannels([identity({ kind: 'phone', value: '+48600000000', opted_out: true })])).toEqual([])
  })

  it('defaults to the channel the customer last used', () => {
    const sms = conversation({ last_channel: 'sms' })
    expect(defaultReplyChannel(['email', 'sms'], sms)).toBe('sms')
    expect(defaultReplyChannel(['email', 'sms'], conversation({ last_channel: 'voice' }))).toBe('sms')
    expect(defaultReplyChannel(['email'], conversation({ last_channel: 'form' }))).toBe('email')
    expect(defaultReplyChannel(['email'], conversation({ last_channel: 'chat' }))).toBe('email')
    expect(defaultReplyChannel([], sms)).toBeNull()
  })
})

describe('formatting', () => {
  it('formats call durations', () => {
    expect(formatDuration(65)).toBe('1:05')
    expect(formatDuration(3723)).toBe('1:02:03')
    expect(formatDuration(null)).toBe('–')
  })

  it('localises sizes and relative times', () => {
    expect(formatBytes(2048, 'en')).toMatch(/2\s?kB/)
    expect(formatBytes(1536, 'pl')).toContain('1,5')
    const now = Date.parse('2030-01-01T10:05:00Z')
    expect(relativeTime('2030-01-01T10:00:00Z', 'en', now)).toMatch(/5 min/)
    expect(relativeTime('2030-01-01T10:00:00Z', 'pl', now)).toMatch(/5 min/)
    expect(initials('Anna Maria Kowalska')).toBe('AK')
  })
})

describe('keyboard shortcuts', () => {
  const key = (k: string, target: EventTarget = document.body, extra: KeyboardEventInit = {}) => {
    const event = new KeyboardEvent('keydown', { key: k, ...extra })
    Object.defineProperty(event, 'target', { value: target })
    return event
  }

  it('maps single keys to actions', () => {
    expect(shortcutFor(key('j'))).toBe('next')
    expect(shortcutFor(key('k'))).toBe('previous')
    expect(shortcutFor(key('Enter'))).toBe('open')
    expect(shortcutFor(key('e'))).toBe('resolve')
    expect(shortcutFor(key('?'))).toBe('help')
    expect(shortcutFor(key('/'))).toBe('search')
    expect(shortcutFor(key('x'))).toBeNull()
  })

  it('never fires while typing or with modifiers', () => {
    expect(shortcutFor(key('j', document.createElement('textarea')))).toBeNull()
    expect(shortcutFor(key('r', document.createElement('input')))).toBeNull()
    expect(shortcutFor(key('r', document.body, { ctrlKey: true }))).toBeNull()
    expect(shortcutFor(key('Enter', document.createElement('button')))).toBeNull()
    const checkbox = document.createElement('input')
    checkbox.type = 'checkbox'
    expect(shortcutFor(key('j', checkbox))).toBe('next')
  })
})

describe('topic report', () => {
  const row = (id: number, name: string, counts: number[], parent_id: number | null = null) => ({
    id, name, parent_id, colour: '#123456', archived: false, counts,
    total: counts.reduce((a, b) => a + b, 0), previous_total: 0, change: null,
  })
  const report = (topics: ReturnType<typeof row>[]) => ({
    from: '2030-01-01T00:00:00+01:00', to: '2030-01-03T00:00:00+01:00', interval: 'day' as const,
    timezone: 'Europe/Warsaw', buckets: ['2030-01-01T00:00:00+01:00', '2030-01-02T00:00:00+01:00'],
    totals: { counts: [0, 0], total: 0, previous_total: 0, change: null }, topics,
  })

  it('charts the biggest topics first and leaves out empty ones', () => {
    const data = toChartData(report([row(1, 'Payment', [1, 3]), row(2, 'Delivery', [9, 0]), row(3, 'Empty', [0, 0])]))
    expect(data.buckets).toHaveLength(2)
    expect(data.series.map((s) => [s.label, s.values])).toEqual([['Delivery', [9, 0]], ['Payment', [1, 3]]])
  })

  it('stacks top-level topics only, and lists subtopics under their parent', () => {
    const data = report([row(1, 'Delivery', [3, 1]), row(2, 'Late', [2, 1], 1), row(3, 'Payment', [0, 5]), row(4, 'Refund', [0, 1], 3)])
    expect(toChartData(data).series.map((s) => s.label)).toEqual(['Payment', 'Delivery'])
    expect(topicTableRows(data).map((r) => [r.name, r.depth])).toEqual([
      ['Payment', 0], ['Refund', 1], ['Delivery', 0], ['Late', 1],
    ])
  })

  it('folds the long tail into "other"', () => {
    const many = Array.from({ length: 11 }, (_, i) => row(i + 1, `T${i + 1}`, [20 - i, 1]))
    const data = toChartData(report(many), 'Other topics')
    expect(data.series).toHaveLength(MAX_SERIES + 1)
    expect(data.series[MAX_SERIES]).toMatchObject({ label: 'Other topics', values: [12 + 11 + 10, 3] })
  })

  it('formats durations in the agent’s language', () => {
    expect(humanDuration(45, 'en')).toBe('45s')
    expect(humanDuration(600, 'en')).toBe('10m')
    expect(humanDuration(3900, 'en')).toBe('1h 5m')
    expect(humanDuration(3 * 86400 + 7200, 'en')).toBe('3d 2h')
    expect(humanDuration(null, 'en')).toBe('—')
    expect(humanDuration(600, 'pl')).toMatch(/10\s?min/)
  })
})

describe('spike alerts', () => {
  it('reads in the agent’s language with the right plural', async () => {
    const { alertText } = await import('@console/lib/alerts')
    const { setLocale } = await import('@console/i18n')
    const alert = {
      id: 1, topic_id: 2, topic: { id: 2, name: 'Delivery', parent_id: null, colour: '#00f' }, status: 'active',
      window_start: null, window_end: null, detected_at: null, ended_at: null, observed: 3, expected: 0.84,
      ratio: 3.6, acknowledged_at: null, acknowledged_by_id: null,
    }
    setLocale('en')
    expect(alertText(alert)).toBe('Delivery: 3 conversations, 0.8 expected')
    setLocale('pl')
    expect(alertText(alert)).toBe('Delivery: 3 rozmowy, oczekiwano 0,8')
    expect(alertText({ ...alert, observed: 12 })).toBe('Delivery: 12 rozmów, oczekiwano 0,8')
    setLocale('en')
  })
})
