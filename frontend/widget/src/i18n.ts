// The widget's texts in English and Polish. A channel may override the greeting and the offline message
// with a string or {en, pl}.

const en = {
  title: 'Chat with us',
  close: 'Close chat',
  mute: 'Mute sounds',
  unmute: 'Turn sounds on',
  online: 'Online',
  offline: 'Offline',
  greeting: 'Hi! How can we help you today?',
  offlineNotice: 'We are offline right now. Leave your email and we will reply there.',
  closedNotice: 'We are outside our business hours. Leave your email and we will reply there.',
  emailSaved: 'Thanks! We will answer at {email} if you have left by then.',
  placeholder: 'Write a message…',
  send: 'Send',
  attach: 'Attach a file',
  start: 'Start chat',
  name: 'Name',
  email: 'Email',
  phone: 'Phone',
  required: 'Required',
  prechatIntro: 'Tell us a little about you, and we will be right with you.',
  saveEmail: 'Save',
  sending: 'Sending…',
  sent: 'Sent',
  seen: 'Seen',
  failed: 'Not sent, tap to retry',
  typing: '{name} is typing…',
  someone: 'Someone',
  agent: 'Support',
  you: 'You',
  uploading: 'Uploading {name}…',
  tooLarge: '{name} is larger than {size}.',
  badType: '{name}: this type of file is not accepted.',
  uploadFailed: 'Could not upload {name}.',
  reconnecting: 'Reconnecting…',
  refused: 'This chat is not available on this site.',
  error: 'Something went wrong. Please try again later.',
  invalidEmail: 'Enter a valid email address.',
  earlier: 'Show earlier messages',
  download: 'Download',
}

export type Texts = typeof en
export type TextKey = keyof Texts

const pl: Texts = {
  title: 'Napisz do nas',
  close: 'Zamknij czat',
  mute: 'Wycisz dźwięki',
  unmute: 'Włącz dźwięki',
  online: 'Dostępni',
  offline: 'Niedostępni',
  greeting: 'Cześć! W czym możemy pomóc?',
  offlineNotice: 'Nie ma nas teraz. Zostaw adres e-mail, a odpowiemy na niego.',
  closedNotice: 'Jesteśmy poza godzinami pracy. Zostaw adres e-mail, a odpowiemy na niego.',
  emailSaved: 'Dziękujemy! Odpowiemy na {email}, jeśli już wyjdziesz.',
  placeholder: 'Napisz wiadomość…',
  send: 'Wyślij',
  attach: 'Dołącz plik',
  start: 'Rozpocznij czat',
  name: 'Imię',
  email: 'E-mail',
  phone: 'Telefon',
  required: 'Wymagane',
  prechatIntro: 'Powiedz nam coś o sobie, a zaraz się odezwiemy.',
  saveEmail: 'Zapisz',
  sending: 'Wysyłanie…',
  sent: 'Wysłano',
  seen: 'Przeczytano',
  failed: 'Nie wysłano, dotknij, aby ponowić',
  typing: '{name} pisze…',
  someone: 'Ktoś',
  agent: 'Obsługa',
  you: 'Ty',
  uploading: 'Wysyłanie {name}…',
  tooLarge: '{name} jest większy niż {size}.',
  badType: '{name}: ten typ pliku nie jest akceptowany.',
  uploadFailed: 'Nie udało się wysłać {name}.',
  reconnecting: 'Łączenie ponownie…',
  refused: 'Ten czat nie jest dostępny na tej stronie.',
  error: 'Coś poszło nie tak. Spróbuj ponownie później.',
  invalidEmail: 'Podaj poprawny adres e-mail.',
  earlier: 'Pokaż wcześniejsze wiadomości',
  download: 'Pobierz',
}

export const LOCALES = { en, pl }
export type Locale = keyof typeof LOCALES

export function pickLocale(...candidates: (string | null | undefined)[]): Locale {
  for (const candidate of candidates) {
    const code = (candidate || '').toLowerCase().slice(0, 2)
    if (code === 'pl' || code === 'en') return code
  }
  return 'en'
}

export type Translate = (key: TextKey, values?: Record<string, string>) => string

export function translator(locale: Locale): Translate {
  const texts = LOCALES[locale]
  return (key, values) => texts[key].replace(/\{(\w+)\}/g, (_, name: string) => values?.[name] ?? '')
}

/** A channel-configured text: a plain string, or {en, pl}; null when not configured. */
export function configured(value: unknown, locale: Locale): string | null {
  if (typeof value === 'string' && value.trim()) return value
  if (value && typeof value === 'object') {
    const map = value as Record<string, unknown>
    const text = map[locale] ?? map.en
    if (typeof text === 'string' && text.trim()) return text
  }
  return null
}
