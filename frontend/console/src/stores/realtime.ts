// The /agent Socket.IO connection: routes every server event to the store that owns that state.
import { defineStore } from 'pinia'
import { io, type Socket } from 'socket.io-client'
import * as events from '@shared/events'
import type {
  Alert,
  Conversation,
  Customer,
  MergedEvent,
  Message,
  PresenceEvent,
  TypingEvent,
  ViewingEvent,
  WrapupEvent,
} from '@shared/types'
import { alertText } from '../lib/alerts'
import { showNotification } from '../lib/notify'
import { useAlertsStore } from './alerts'
import type { QueueEvent } from '../lib/callQueue'
import { useAuthStore } from './auth'
import { useCallQueueStore } from './callQueue'
import { useConversationStore } from './conversation'
import { useCustomerStore } from './customer'
import { useDirectoryStore } from './directory'
import { useInboundMailStore } from './inboundMail'
import { useInboxStore } from './inbox'
import { useUiStore } from './ui'

type Payload = Record<string, unknown>

/** Events carry either the object itself or ``{message, conversation, …}``; accept both. */
function unwrap<T>(payload: Payload, key: string): T {
  return (payload && typeof payload === 'object' && key in payload ? payload[key] : payload) as T
}

export interface EventHandlers {
  onOpenConversation?: (id: number) => void
  notificationTitle?: (conversation: Conversation | undefined, message: Message) => string
}

export const useRealtimeStore = defineStore('realtime', () => {
  let socket: Socket | null = null
  let handlers: EventHandlers = {}
  let connectedOnce = false
  let typingTimer: ReturnType<typeof setTimeout> | null = null
  let typingFor: number | null = null
  let typingSentAt = 0

  /** Handle one server event; exported through the store so tests can drive it without a socket. */
  function dispatch(name: string, payload: Payload): void {
    const inbox = useInboxStore()
    const current = useConversationStore()
    const customer = useCustomerStore()
    const auth = useAuthStore()
    const ui = useUiStore()
    switch (name) {
      case events.MESSAGE_CREATED: {
        const message = unwrap<Message>(payload, 'message')
        const conversation = (payload.conversation as Conversation | undefined) ?? undefined
        inbox.applyMessage(message, conversation)
        current.applyMessage(message)
        if (conversation) current.applyConversation(conversation)
        maybeNotify(message, conversation ?? inbox.items.find((row) => row.id === message.conversation_id))
        if (customer.customer && message.customer_id === customer.customer.id && !conversation) {
          // a new conversation of this customer shows in the sidebar's history
          if (!customer.conversations.some((row) => row.id === message.conversation_id)) void customer.reload()
        }
        break
      }
      case events.MESSAGE_UPDATED: {
        const message = unwrap<Message>(payload, 'message')
        current.applyMessage(message)
        break
      }
      case events.CONVERSATION_CREATED:
      case events.CONVERSATION_UPDATED: {
        const conversation = unwrap<Conversation>(payload, 'conversation')
        inbox.applyConversation(conversation)
        current.applyConversation(conversation)
        if (customer.customer?.id === conversation.customer_id) {
          const known = customer.conversations.some((row) => row.id === conversation.id)
          customer.conversations = known
            ? customer.conversations.map((row) => (row.id === conversation.id ? { ...row, ...conversation } : row))
            : [conversation, ...customer.conversations]
        }
        break
      }
      case events.CUSTOMER_UPDATED:
        customer.applyCustomer(unwrap<Customer>(payload, 'customer'))
        break
      case events.CUSTOMER_MERGED:
        customer.applyMerged(payload as unknown as MergedEvent)
        break
      case events.TYPING:
        current.applyTyping(payload as unknown as TypingEvent)
        break
      case events.VIEWING: {
        const viewing = payload as unknown as ViewingEvent
        if (viewing.name) useDirectoryStore().rememberName(viewing.user_id, viewing.name)
        // Someone new opened our conversation: announce ourselves once, so they know we are here too.
        if (current.applyViewing(viewing)) socket?.emit(events.CLIENT_VIEW, { conversation_id: viewing.conversation_id })
        break
      }
      case events.PRESENCE_UPDATED: {
        const presence = payload as unknown as PresenceEvent
        useDirectoryStore().setPresence(presence.user_id, { online: presence.online, available: presence.available })
        break
      }
      case events.ALERT_CREATED:
        if (auth.hasRole('supervisor')) {
          const alert = unwrap<Alert>(payload, 'alert')
          useAlertsStore().apply(alert)
          ui.toast(alertText(alert), 'info', 8000)
        }
        break
      case events.WRAPUP_REQUESTED: {
        // Sent only to the agent concerned: after their call ends, or after they resolved a conversation.
        const request = payload as unknown as WrapupEvent
        if (request.reason === 'call') ui.requestWrapUp(request.conversation_id, 'call')
        else if (!ui.recentlyWrapped(request.conversation_id)) ui.requestWrapUp(request.conversation_id, 'resolved')
        break
      }
      case events.CALL_QUEUE_UPDATED:
        useCallQueueStore().apply(payload as unknown as QueueEvent)
        break
      case events.INBOUND_MAIL_FAILED:
        if (auth.hasRole('admin')) useInboundMailStore().apply(Number(payload.failed) || 0)
        break
      default:
        break
    }
  }

  function maybeNotify(message: Message, conversation: Conversation | undefined): void {
    const ui = useUiStore()
    const auth = useAuthStore()
    const current = useConversationStore()
    if (!ui.notifications || message.direction !== 'in' || message.kind === 'note' || message.kind === 'event') return
    if (!conversation || conversation.assignee_id !== auth.user?.id) return
    if (!document.hidden && current.id === message.conversation_id) return
    const title = handlers.notificationTitle?.(conversation, message) ?? conversation.customer?.name ?? ''
    showNotification(title, message.text, `conversation-${message.conversation_id}`, () =>
      handlers.onOpenConversation?.(message.conversation_id),
    )
  }

  function connect(options: EventHandlers = {}): void {
    handlers = options
    if (socket) return
    const ui = useUiStore()
    ui.connection = 'connecting'
    socket = io(events.AGENT_NAMESPACE, {
      path: '/socket.io',
      transports: ['websocket', 'polling'],
      tryAllTransports: true,
      withCredentials: true,
    })
    socket.on('connect', () => {
      ui.connection = 'online'
      const current = useConversationStore()
      if (current.id !== null) socket?.emit(events.CLIENT_VIEW, { conversation_id: current.id })
      // After a gap, events may have been missed: fetch the truth again.
      if (connectedOnce) {
        void useInboxStore().load()
        void useCallQueueStore().load()
        if (useAuthStore().hasRole('admin')) void useInboundMailStore().load()
        if (current.id !== null) void current.open(current.id)
      }
      connectedOnce = true
    })
    socket.on('disconnect', () => {
      ui.connection = 'offline'
    })
    socket.on('connect_error', () => {
      ui.connection = 'offline'
    })
    socket.onAny((name: string, payload: Payload) => dispatch(name, payload ?? {}))
  }

  function disconnect(): void {
    socket?.disconnect()
    socket = null
    connectedOnce = false
  }

  function viewing(conversationId: number, on: boolean): void {
    socket?.emit(on ? events.CLIENT_VIEW : events.CLIENT_LEAVE, { conversation_id: conversationId })
  }

  /** Tell colleagues we are typing; a pause of 3 s (or sending) ends it. Notes never reach the customer. */
  function typing(conversationId: number, on = true, isPrivate = false): void {
    if (!socket) return
    // Re-announce every few seconds: colleagues forget a typist after a short time-to-live.
    if (on && (typingFor !== conversationId || Date.now() - typingSentAt > 4000)) {
      socket.emit(events.CLIENT_TYPING, { conversation_id: conversationId, typing: true, private: isPrivate })
      typingFor = conversationId
      typingSentAt = Date.now()
    }
    if (typingTimer) clearTimeout(typingTimer)
    typingTimer = null
    if (on) {
      typingTimer = setTimeout(() => typing(conversationId, false, isPrivate), 3000)
    } else if (typingFor !== null) {
      socket.emit(events.CLIENT_TYPING, { conversation_id: typingFor, typing: false, private: isPrivate })
      typingFor = null
    }
  }

  return { connect, disconnect, dispatch, viewing, typing }
})
