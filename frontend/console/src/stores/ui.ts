// Console-wide UI state: preferences, dialogs, toasts, the socket's health and keyboard commands.
import { defineStore } from 'pinia'
import { ref } from 'vue'
import { setLocale, type Locale, currentLocale } from '../i18n'
import { notificationPermission, requestNotificationPermission } from '../lib/notify'

const NOTIFY_KEY = 'switchboard.notifications'

export interface Toast {
  id: number
  kind: 'info' | 'error' | 'success'
  text: string
}

/**
 * resolve: the agent asked to resolve; the dialog picks topics, then resolves.
 * call / resolved: the server asks after a call ended or a resolve happened elsewhere; topics only.
 */
export interface WrapUpRequest {
  conversationId: number
  reason: 'resolve' | 'call' | 'resolved'
}

const WRAPPED_MEMORY_MS = 30_000

/** A one-shot command for whichever component handles it (the reply box focuses on "reply"). */
export interface Command {
  name: 'reply' | 'note' | 'assign' | 'search'
  seq: number
}

export const useUiStore = defineStore('ui', () => {
  const locale = ref<Locale>(currentLocale())
  const notifications = ref(localStorage.getItem(NOTIFY_KEY) === 'on' && notificationPermission() === 'granted')
  const shortcutsOpen = ref(false)
  const wrapUp = ref<WrapUpRequest | null>(null)
  const toasts = ref<Toast[]>([])
  const connection = ref<'connecting' | 'online' | 'offline'>('connecting')
  const command = ref<Command | null>(null)
  const wrapped = new Map<number, number>()
  let seq = 0

  function changeLocale(next: Locale): void {
    locale.value = next
    setLocale(next)
  }

  async function setNotifications(on: boolean): Promise<boolean> {
    if (on) {
      const permission = await requestNotificationPermission()
      on = permission === 'granted'
    }
    notifications.value = on
    localStorage.setItem(NOTIFY_KEY, on ? 'on' : 'off')
    return on
  }

  function toast(text: string, kind: Toast['kind'] = 'info', ttl = 5000): void {
    const id = ++seq
    toasts.value = [...toasts.value, { id, kind, text }]
    if (ttl > 0) setTimeout(() => dismiss(id), ttl)
  }

  function dismiss(id: number): void {
    toasts.value = toasts.value.filter((item) => item.id !== id)
  }

  function issue(name: Command['name']): void {
    command.value = { name, seq: ++seq }
  }

  function requestWrapUp(conversationId: number, reason: WrapUpRequest['reason']): void {
    wrapUp.value = { conversationId, reason }
  }

  /** Remember that this console just wrapped a conversation up, so the server's echo does not ask again. */
  function markWrapped(conversationId: number): void {
    wrapped.set(conversationId, Date.now())
  }

  function recentlyWrapped(conversationId: number): boolean {
    const at = wrapped.get(conversationId)
    return at !== undefined && Date.now() - at < WRAPPED_MEMORY_MS
  }

  return {
    locale,
    notifications,
    shortcutsOpen,
    wrapUp,
    toasts,
    connection,
    command,
    changeLocale,
    setNotifications,
    toast,
    dismiss,
    issue,
    requestWrapUp,
    markWrapped,
    recentlyWrapped,
  }
})
