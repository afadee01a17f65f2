import { describe, expect, it } from 'vitest'
import en from '@console/i18n/en'
import pl from '@console/i18n/pl'
import { i18n, polishPlural, setLocale } from '@console/i18n'

function keys(value: unknown, prefix = ''): string[] {
  if (typeof value !== 'object' || value === null) return [prefix]
  return Object.entries(value).flatMap(([key, child]) => keys(child, prefix ? `${prefix}.${key}` : key))
}

describe('translations', () => {
  it('has every English string in Polish, and nothing extra', () => {
    expect(keys(pl).sort()).toEqual(keys(en).sort())
  })

  it('has no empty or untranslated Polish strings (brand names aside)', () => {
    const same = keys(en).filter((key) => {
      const get = (obj: unknown) => key.split('.').reduce<unknown>((o, k) => (o as Record<string, unknown>)[k], obj)
      return get(en) === get(pl)
    })
    expect(same.every((key) => /^(common\.ok|channel\.(sms|api)|message\.system|reply\.sendHint|status|conversation\.status|inbox\.filter\.status)/.test(key))).toBe(true)
  })

  it('uses the three Polish plural forms', () => {
    expect([1, 2, 4, 5, 12, 14, 22, 25, 101, 0].map((n) => polishPlural(n, 3))).toEqual([0, 1, 1, 2, 2, 2, 1, 2, 2, 2])
    setLocale('pl')
    const t = i18n.global.t
    expect(t('inbox.unreadCount', 1)).toBe('1 nieprzeczytana wiadomość')
    expect(t('inbox.unreadCount', 3)).toBe('3 nieprzeczytane wiadomości')
    expect(t('inbox.unreadCount', 7)).toBe('7 nieprzeczytanych wiadomości')
    setLocale('en')
    expect(t('inbox.unreadCount', 1)).toBe('1 unread message')
    expect(t('inbox.unreadCount', 7)).toBe('7 unread messages')
  })

  it('compiles every message in both languages', () => {
    for (const locale of ['en', 'pl'] as const) {
      setLocale(locale)
      for (const key of keys(en)) expect(i18n.global.t(key, { n: 2, names: 'X', name: 'X' })).not.toBe('')
    }
    setLocale('en')
  })
})
