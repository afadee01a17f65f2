// The open conversation: its messages (live), its state, who else is viewing or typing in it.
import { defineStore } from 'pinia'
import { computed, ref } from 'vue'
import type { Conversation, Message, TypingEvent, ViewingEvent } from '@shared/types'
import { api, type ConversationPatch, type NewMessage } from '../api'
import { useAuthStore } from './auth'
import { useInboxStore } from './inbox'

const TYPING_TTL_MS = 6000
// Viewers re-announce themselves every VIEW_REFRESH_MS; one not heard from for VIEWER_TTL_MS has gone
// (a closed tab sends no "leave").
export const VIEW_REFRESH_MS = 30_000
const VIEWER_TTL_MS = 75_000
// A very long conversation stops loading here; older pages are the rarely-read start of it.
const MAX_MESSAGE_PAGES = 10

const DELIVERY_RANK: Record<string, number> = {
  received: 0,
  queued: 1,
  sending: 2,
  sent: 3,
  delivered: 4,
  undelivered: 4,
  failed: 4,
  not_sent: 4,
}

/**
 * Whether ``incoming`` is older news than ``known`` about the same message. The socket's message.updated
 * ("sent") can overtake the HTTP answer that created the message ("queued"); a retry after a failure
 * counts one more attempt, so it is never mistaken for stale.
 */
export function isStale(known: Message, incoming: Message): boolean {
  if (incoming.attempts !== known.attempts) return incoming.attempts < known.attempts
  return (DELIVERY_RANK[incoming.delivery_status] ?? 0) < (DELIVERY_RANK[known.delivery_status] ?? 0)
}

function byTime(a: Message, b: Message): number {
  const diff = Date.parse(a.created_at ?? '') - Date.parse(b.created_at ?? '')
  return Number.isNaN(diff) || diff === 0 ? a.id - b.id : diff
}

export const useConversationStore = defineStore('conversation', () => {
  const conversation = ref<Conversation | null>(null)
  const messages = ref<Message[]>([])
  const moreCursor = ref<string | null>(null)
  const loading = ref(false)
  const error = ref<string | null>(null)
  const sending = ref(false)
  const viewers = ref<Record<number, number>>({}) // user id → last heard (ms since epoch)
  const typers = ref<Record<number, number>>({}) // user id → expiry (ms since epoch)
  const now = ref(Date.now())
  let generation = 0

  const id = computed(() => conversation.value?.id ?? null)
  const lastInbound = computed(() => {
    for (let i = messages.value.length - 1; i >= 0; i -= 1) {
      const message = messages.value[i]
      if (message.direction === 'in' && message.kind !== 'note' && message.kind !== 'event') return message
    }
    return null
  })
  const otherViewers = computed(() => {
    const me = useAuthStore().user?.id
    return Object.entries(viewers.value)
      .filter(([userId, seen]) => Number(userId) !== me && now.value - seen < VIEWER_TTL_MS)
      .map(([userId]) => Number(userId))
  })
  const typingUsers = computed(() => {
    const me = useAuthStore().user?.id
    return Object.entries(typers.value)
      .filter(([userId, until]) => Number(userId) !== me && until > now.value)
      .map(([userId]) => Number(userId))
  })

  async function open(conversationId: number): Promise<void> {
    const mine = ++generation
    loading.value = true
    error.value = null
    viewers.value = {}
    typers.value = {}
    if (conversation.value?.id !== conversationId) {
      conversation.value = null
      messages.value = []
    }
    try {
      const [detail, first] = await Promise.all([api.conversation(conversationId), api.messages(conversationId)])
      if (mine !== generation) return
      // Pages run oldest first: follow them to the newest message.
      const items = [...first.items]
      let cursor = first.next_cursor
      for (let pages = 1; cursor && pages < MAX_MESSAGE_PAGES; pages += 1) {
        const next = await api.messages(conversationId, cursor)
        if (mine !== generation) return
        items.push(...next.items)
        cursor = next.next_cursor
      }
      conversation.value = detail
      messages.value = items.sort(byTime)
      moreCursor.value = cursor
    } catch (err) {
      if (mine === generation) error.value = err instanceof Error ? err.message : String(err)
    } finally {
      if (mine === generation) loading.value = false
    }
  }

  function close(): void {
    generation += 1
    conversation.value = null
    messages.value = []
    viewers.value = {}
    typers.value = {}
  }

  async function loadMore(): Promise<void> {
    if (!conversation.value || !moreCursor.value) return
    const page = await api.messages(conversation.value.id, moreCursor.value)
    upsertMessages(page.items)
    moreCursor.value = page.next_cursor
  }

  function upsertMessages(list: Message[]): void {
    const byId = new Map(messages.value.map((message) => [message.id, message]))
    for (const message of list) {
      const known = byId.get(message.id)
      if (known && isStale(known, message)) continue
      byId.set(message.id, { ...known, ...message })
    }
    messages.value = [...byId.values()].sort(byTime)
  }

  async function send(message: NewMessage): Promise<Message | null> {
    if (!conversation.value) return null
    sending.value = true
    try {
      const created = await api.sendMessage(conversation.value.id, message)
      upsertMessages([created])
      useInboxStore().applyMessage(created)
      return created
    } finally {
      sending.value = false
    }
  }

  function adopt(next: Conversation): void {
    conversation.value = { ...conversation.value, ...next }
    useInboxStore().applyConversation(conversation.value)
  }

  async function patch(changes: ConversationPatch): Promise<Conversation | null> {
    if (!conversation.value) return null
    const next = await api.patchConversation(conversation.value.id, changes)
    adopt(next)
    return next
  }

  async function setTopics(topicIds: number[]): Promise<void> {
    if (!conversation.value) return
    const answer = await api.setTopics(conversation.value.id, topicIds)
    adopt({ ...conversation.value, topic_ids: answer.topic_ids, topics: answer.topics })
  }

  // Real-time events ------------------------------------------------------------------------------
  function applyMessage(message: Message): void {
    if (message.conversation_id !== id.value) return
    upsertMessages([message])
    if (message.author_id !== null) typers.value = { ...typers.value, [message.author_id]: 0 }
  }

  function applyConversation(next: Conversation): void {
    if (next.id !== id.value) return
    conversation.value = { ...conversation.value, ...next }
  }

  function applyTyping(event: TypingEvent): void {
    if (event.conversation_id !== id.value) return
    now.value = Date.now()
    typers.value = { ...typers.value, [event.user_id]: event.typing ? Date.now() + TYPING_TTL_MS : 0 }
  }

  /** Track who else has this conversation open; return whether ``event`` named someone new. */
  function applyViewing(event: ViewingEvent): boolean {
    if (event.conversation_id !== id.value) return false
    const at = Date.now()
    now.value = at
    const seen = viewers.value[event.user_id]
    const known = seen !== undefined && at - seen < VIEWER_TTL_MS
    if (event.viewing) {
      viewers.value = { ...viewers.value, [event.user_id]: at }
      return !known
    }
    const next = { ...viewers.value }
    delete next[event.user_id]
    viewers.value = next
    typers.value = { ...typers.value, [event.user_id]: 0 }
    return false
  }

  /** Re-evaluate typing and viewing expiry; the view calls this on a timer. */
  function tick(): void {
    now.value = Date.now()
  }

  return {
    conversation,
    messages,
    moreCursor,
    loading,
    error,
    sending,
    viewers,
    typers,
    id,
    lastInbound,
    otherViewers,
    typingUsers,
    open,
    close,
    loadMore,
    upsertMessages,
    send,
    patch,
    setTopics,
    adopt,
    applyMessage,
    applyConversation,
    applyTyping,
    applyViewing,
    tick,
  }
})
