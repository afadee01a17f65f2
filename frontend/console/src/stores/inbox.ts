// The inbox list: the current view and filters, the loaded page(s), live re-sorting and unread counts.
import { defineStore } from 'pinia'
import { computed, ref, shallowRef } from 'vue'
import type { ChannelKind, Conversation, ConversationStatus, Message } from '@shared/types'
import { api, type ConversationFilters } from '../api'
import { upsertSorted } from '../lib/sort'
import { useAuthStore } from './auth'

export type InboxView = 'mine' | 'unassigned' | 'all' | `team:${number}`

export interface InboxFilters {
  status: ConversationStatus | 'all'
  channel: ChannelKind | ''
  topic: number | ''
  q: string
}

// A small first page paints fast; later pages are bigger so scrolling through thousands needs few requests.
export const PAGE_SIZE = 50
export const MORE_PAGE_SIZE = 200
const UNREAD_KEY = 'switchboard.unread'

function loadUnread(): Record<number, number> {
  try {
    const raw = localStorage.getItem(UNREAD_KEY)
    return raw ? (JSON.parse(raw) as Record<number, number>) : {}
  } catch {
    return {}
  }
}

export function defaultFilters(): InboxFilters {
  return { status: 'open', channel: '', topic: '', q: '' }
}

export const useInboxStore = defineStore('inbox', () => {
  const view = ref<InboxView>('mine')
  const filters = ref<InboxFilters>(defaultFilters())
  // A shallow ref: rows are replaced, never mutated, so 10,000 of them cost no deep proxies.
  const items = shallowRef<Conversation[]>([])
  const nextCursor = ref<string | null>(null)
  const loading = ref(false)
  const loadingMore = ref(false)
  const error = ref<string | null>(null)
  const unread = ref<Record<number, number>>(loadUnread())
  const selectedId = ref<number | null>(null)
  const activeId = ref<number | null>(null)
  // performance.now() when the last first page arrived from the API; the list records when it painted.
  const answeredAt = ref(0)
  let generation = 0
  // message.created arrives before conversation.created for a new conversation; keep the message
  // so the row that follows can show its preview.
  const recentMessages = new Map<number, Message>()

  const unreadTotal = computed(() => Object.values(unread.value).reduce((sum, count) => sum + count, 0))
  const selectedIndex = computed(() => items.value.findIndex((row) => row.id === selectedId.value))

  function query(): ConversationFilters {
    const auth = useAuthStore()
    const result: ConversationFilters = {
      status: filters.value.status,
      channel: filters.value.channel,
      topic: filters.value.topic,
      q: filters.value.q.trim(),
    }
    if (view.value === 'mine') result.assignee = auth.user ? 'me' : ''
    else if (view.value === 'unassigned') result.assignee = 'none'
    else if (view.value.startsWith('team:')) result.team = Number(view.value.slice(5))
    return result
  }

  /** Whether a conversation belongs in the current view; used for rows that arrive over the socket. */
  function matches(conversation: Conversation): boolean {
    const auth = useAuthStore()
    const f = filters.value
    if (f.status !== 'all' && conversation.status !== f.status) return false
    if (view.value === 'mine' && conversation.assignee_id !== auth.user?.id) return false
    if (view.value === 'unassigned' && conversation.assignee_id !== null) return false
    if (view.value.startsWith('team:') && conversation.team_id !== Number(view.value.slice(5))) return false
    if (f.channel) {
      const seen = conversation.channels ?? [conversation.last_channel, conversation.origin_channel]
      if (!seen.includes(f.channel)) return false
    }
    if (f.topic !== '') {
      const ids = conversation.topic_ids ?? conversation.topics?.map((topic) => topic.id) ?? []
      if (!ids.includes(f.topic)) return false
    }
    const q = f.q.trim().toLowerCase()
    if (q) {
      const haystack = `${conversation.subject ?? ''} ${conversation.customer?.name ?? ''} ${conversation.number ?? ''}`
      if (!haystack.toLowerCase().includes(q)) return false
    }
    return true
  }

  async function load(): Promise<void> {
    const mine = ++generation
    loading.value = true
    error.value = null
    try {
      const page = await api.conversations(query(), null, PAGE_SIZE)
      if (mine !== generation) return // a newer filter won the race
      answeredAt.value = performance.now()
      items.value = page.items
      nextCursor.value = page.next_cursor
      if (selectedId.value === null || !page.items.some((row) => row.id === selectedId.value)) {
        selectedId.value = activeId.value ?? page.items[0]?.id ?? null
      }
    } catch (err) {
      if (mine === generation) error.value = err instanceof Error ? err.message : String(err)
    } finally {
      if (mine === generation) loading.value = false
    }
  }

  async function loadMore(): Promise<void> {
    if (!nextCursor.value || loadingMore.value || loading.value) return
    const mine = generation
    loadingMore.value = true
    try {
      const page = await api.conversations(query(), nextCursor.value, MORE_PAGE_SIZE)
      if (mine !== generation) return
      const seen = new Set(items.value.map((row) => row.id))
      items.value = items.value.concat(page.items.filter((row) => !seen.has(row.id)))
      nextCursor.value = page.next_cursor
    } catch (err) {
      error.value = err instanceof Error ? err.message : String(err)
    } finally {
      loadingMore.value = false
    }
  }

  function setView(next: InboxView): void {
    if (view.value === next) return
    view.value = next
    void load()
  }

  function setFilters(patch: Partial<InboxFilters>): void {
    filters.value = { ...filters.value, ...patch }
    void load()
  }

  /** Put a new or changed conversation where it belongs now, or take it out of a view it left. */
  function applyConversation(conversation: Conversation): void {
    // Events carry the bare conversation; keep the row's topics, preview and channels from the list.
    const old = items.value.find((row) => row.id === conversation.id)
    let merged = old ? { ...old, ...conversation } : conversation
    const recent = recentMessages.get(conversation.id)
    if (recent && merged.preview === undefined) merged = { ...merged, ...previewOf(recent, merged) }
    if (!matches(merged)) {
      if (old) items.value = items.value.filter((row) => row.id !== conversation.id)
      return
    }
    const next = upsertSorted(items.value, merged)
    // A row that sorts past the loaded pages arrives with the next page instead (the keyset cursor is there).
    if (nextCursor.value && next[next.length - 1]?.id === merged.id && next.length > 1) {
      items.value = next.slice(0, -1)
      return
    }
    items.value = next
  }

  function removeConversation(id: number): void {
    items.value = items.value.filter((row) => row.id !== id)
  }

  function previewOf(message: Message, base: Conversation): Partial<Conversation> {
    if (message.kind === 'event') return {}
    return {
      preview: message.text,
      last_message: { text: message.text, direction: message.direction, channel: message.channel, kind: message.kind },
      last_channel:
        message.direction === 'in' && message.kind === 'message' ? (message.channel as ChannelKind) : base.last_channel,
    }
  }

  /** A message arrived or was sent: move its conversation to the top and count it as unread. */
  function applyMessage(message: Message, conversation?: Conversation | null): void {
    recentMessages.delete(message.conversation_id)
    recentMessages.set(message.conversation_id, message)
    if (recentMessages.size > 500) recentMessages.delete(recentMessages.keys().next().value as number)
    const row = items.value.find((item) => item.id === message.conversation_id)
    const base = conversation ? { ...row, ...conversation } : row
    if (base) {
      applyConversation({
        ...base,
        ...previewOf(message, base),
        last_activity_at: conversation?.last_activity_at ?? message.created_at ?? base.last_activity_at,
      })
    }
    const fromCustomer = message.direction === 'in' && (message.kind === 'message' || message.kind === 'call')
    if (fromCustomer && message.conversation_id !== activeId.value) bumpUnread(message.conversation_id)
  }

  function persistUnread(): void {
    try {
      localStorage.setItem(UNREAD_KEY, JSON.stringify(unread.value))
    } catch {
      // private mode or full storage: unread counts still work for this session
    }
  }

  function bumpUnread(id: number): void {
    unread.value = { ...unread.value, [id]: (unread.value[id] ?? 0) + 1 }
    persistUnread()
  }

  function markRead(id: number): void {
    if (!unread.value[id]) return
    const next = { ...unread.value }
    delete next[id]
    unread.value = next
    persistUnread()
  }

  function setActive(id: number | null): void {
    activeId.value = id
    if (id !== null) {
      selectedId.value = id
      markRead(id)
    }
  }

  /** Move the keyboard selection by ``delta`` rows; fetch the next page when it nears the end. */
  function move(delta: number): Conversation | null {
    if (items.value.length === 0) return null
    const index = selectedIndex.value
    const next = index < 0 ? 0 : Math.min(items.value.length - 1, Math.max(0, index + delta))
    selectedId.value = items.value[next].id
    if (next >= items.value.length - 5) void loadMore()
    return items.value[next]
  }

  return {
    view,
    filters,
    items,
    nextCursor,
    loading,
    loadingMore,
    error,
    unread,
    selectedId,
    activeId,
    answeredAt,
    unreadTotal,
    selectedIndex,
    query,
    matches,
    load,
    loadMore,
    setView,
    setFilters,
    applyConversation,
    removeConversation,
    applyMessage,
    markRead,
    setActive,
    move,
  }
})
