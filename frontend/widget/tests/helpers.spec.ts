import { describe, expect, it } from 'vitest'
import { configured, pickLocale, translator } from '../src/i18n'
import { clientId, formatSize, showsInline, validEmail } from '../src/text'

describe('i18n', () => {
  it('picks Polish for pl-PL and falls back to English', () => {
    expect(pickLocale('pl-PL')).toBe('pl')
    expect(pickLocale(undefined, 'de', 'en-GB')).toBe('en')
    expect(pickLocale('fr')).toBe('en')
  })

  it('fills placeholders and reads channel texts given as a string or per language', () => {
    expect(translator('pl')('typing', { name: 'Anna' })).toBe('Anna pisze…')
    expect(configured({ en: 'Back at 9', pl: 'Wracamy o 9' }, 'pl')).toBe('Wracamy o 9')
    expect(configured('Hello', 'pl')).toBe('Hello')
    expect(configured(null, 'en')).toBeNull()
  })
})

describe('helpers', () => {
  it('makes client ids the server accepts', () => {
    expect(clientId()).toMatch(/^[0-9a-f]{32}$/)
    expect(clientId()).not.toBe(clientId())
  })

  it('formats sizes and checks emails', () => {
    expect(formatSize(5 * 1024 * 1024)).toBe('5 MB')
    expect(formatSize(2048)).toBe('2 KB')
    expect(validEmail('anna@example.com')).toBe(true)
    expect(validEmail('anna@')).toBe(false)
  })
})

describe('attachments', () => {
  it('shows raster images inline and offers every other file, an agent\'s PDF or an SVG, as a download', () => {
    expect(showsInline('image/png')).toBe(true)
    expect(showsInline('IMAGE/JPEG')).toBe(true)
    expect(showsInline('image/svg+xml')).toBe(false)
    expect(showsInline('application/pdf')).toBe(false)
  })
})
