// Single-key shortcuts (j/k, Enter, r, n, e, a, /, ?) that never fire while the agent is typing.

export type ShortcutAction =
  | 'next'
  | 'previous'
  | 'open'
  | 'reply'
  | 'note'
  | 'resolve'
  | 'assign'
  | 'search'
  | 'help'
  | 'escape'

export const SHORTCUTS: { key: string; action: ShortcutAction }[] = [
  { key: 'j', action: 'next' },
  { key: 'k', action: 'previous' },
  { key: 'Enter', action: 'open' },
  { key: 'r', action: 'reply' },
  { key: 'n', action: 'note' },
  { key: 'e', action: 'resolve' },
  { key: 'a', action: 'assign' },
  { key: '/', action: 'search' },
  { key: '?', action: 'help' },
]

export function isTypingTarget(target: EventTarget | null): boolean {
  if (!(target instanceof HTMLElement)) return false
  if (target.isContentEditable) return true
  const tag = target.tagName
  if (tag === 'TEXTAREA' || tag === 'SELECT') return true
  if (tag === 'INPUT') {
    const type = (target as HTMLInputElement).type
    return !['checkbox', 'radio', 'button', 'submit', 'reset'].includes(type)
  }
  return false
}

/** Map a key event to a shortcut action, or null when it is not one (or the agent is typing). */
export function shortcutFor(event: KeyboardEvent): ShortcutAction | null {
  if (event.key === 'Escape') return 'escape'
  if (event.ctrlKey || event.metaKey || event.altKey || event.isComposing) return null
  if (isTypingTarget(event.target)) return null
  // Enter on a focused button or link belongs to that control.
  if (event.key === 'Enter' && event.target instanceof HTMLElement) {
    const tag = event.target.tagName
    if (tag === 'BUTTON' || tag === 'A' || tag === 'SUMMARY') return null
  }
  const match = SHORTCUTS.find((shortcut) => shortcut.key === event.key)
  return match ? match.action : null
}
