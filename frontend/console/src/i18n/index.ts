// English and Polish for every string; dates and numbers through Intl with each locale's conventions.
import { createI18n } from 'vue-i18n'
import en from './en'
import pl from './pl'

export const LOCALES = ['en', 'pl'] as const
export type Locale = (typeof LOCALES)[number]
export type MessageSchema = typeof en

const STORAGE_KEY = 'switchboard.locale'

/** Polish has three plural forms: 1 rozmowa, 2–4 rozmowy, 5+ rozmów (and 12–14 rozmów). */
export function polishPlural(choice: number, choicesLength: number): number {
  if (choicesLength < 3) return choice === 1 ? 0 : 1
  const n = Math.abs(choice)
  if (n === 1) return 0
  const lastDigit = n % 10
  const lastTwo = n % 100
  if (lastDigit >= 2 && lastDigit <= 4 && (lastTwo < 12 || lastTwo > 14)) return 1
  return 2
}

function isLocale(value: unknown): value is Locale {
  return typeof value === 'string' && (LOCALES as readonly string[]).includes(value)
}

export function initialLocale(): Locale {
  try {
    const saved = localStorage.getItem(STORAGE_KEY)
    if (isLocale(saved)) return saved
  } catch {
    // storage unavailable: fall through to the browser's language
  }
  const browser = (typeof navigator !== 'undefined' ? navigator.language : 'en').slice(0, 2)
  return isLocale(browser) ? browser : 'en'
}

const datetimeFormats = {
  en: {
    short: { day: 'numeric', month: 'short' },
    date: { dateStyle: 'medium' },
    time: { hour: '2-digit', minute: '2-digit' },
    long: { dateStyle: 'medium', timeStyle: 'short' },
  },
  pl: {
    short: { day: 'numeric', month: 'short' },
    date: { dateStyle: 'medium' },
    time: { hour: '2-digit', minute: '2-digit' },
    long: { dateStyle: 'medium', timeStyle: 'short' },
  },
} as const

const numberFormats = {
  en: { integer: { maximumFractionDigits: 0 }, percent: { style: 'percent', maximumFractionDigits: 1 } },
  pl: { integer: { maximumFractionDigits: 0 }, percent: { style: 'percent', maximumFractionDigits: 1 } },
} as const

export const i18n = createI18n<[MessageSchema], Locale, false>({
  legacy: false,
  locale: initialLocale(),
  fallbackLocale: 'en',
  messages: { en, pl },
  pluralRules: { pl: polishPlural },
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  datetimeFormats: datetimeFormats as any,
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  numberFormats: numberFormats as any,
  missingWarn: false,
  fallbackWarn: false,
})

export function currentLocale(): Locale {
  const value = i18n.global.locale.value
  return isLocale(value) ? value : 'en'
}

export function setLocale(locale: Locale): void {
  i18n.global.locale.value = locale
  document.documentElement.lang = locale
  try {
    localStorage.setItem(STORAGE_KEY, locale)
  } catch {
    // not persisted; the choice still applies to this tab
  }
}
