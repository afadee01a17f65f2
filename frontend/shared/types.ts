// JSON shapes of the REST API and the real-time events (app/serializers.py is the source of truth).
// Fields marked optional are ones some endpoints add (list previews, topic ids) and others leave out.

export type Role = 'agent' | 'supervisor' | 'admin'
export type ChannelKind = 'email' | 'sms' | 'voice' | 'chat' | 'form' | 'api'
export type ConversationStatus = 'open' | 'pending' | 'snoozed' | 'resolved'
export type MessageKind = 'message' | 'note' | 'call' | 'event'
export type Direction = 'in' | 'out'
export type DeliveryStatus =
  | 'received'
  | 'queued'
  | 'sending'
  | 'sent'
  | 'delivered'
  | 'undelivered'
  | 'failed'
  | 'not_sent'
export type IdentityKind = 'email' | 'phone' | 'chat' | 'external'

export interface User {
  id: number
  email: string
  name: string
  role: Role
  active: boolean
  available: boolean
  locale: string
  phone: string | null
  client_identity: string | null
  team_ids: number[]
}

export interface Team {
  id: number
  name: string
  member_ids: number[]
}

export interface Identity {
  id: number
  kind: IdentityKind
  value: string
  verified: boolean
  source: string
  opted_out: boolean
  created_at: string | null
}

export interface CustomerSummary {
  id: number
  name: string | null
}

export interface Customer extends CustomerSummary {
  attributes: Record<string, unknown>
  created_at: string | null
  last_seen_at: string | null
  merged_into_id: number | null
  identities?: Identity[]
  topics?: TopicCount[]
  conversations?: Conversation[]
  merged_from?: number | null
  merged_ids?: number[]
  conversation_count?: number
}

export interface TopicCount {
  id: number
  name: string
  count?: number
  colour?: string
}

export interface Conversation {
  id: number
  number: number | null
  status: ConversationStatus
  subject: string | null
  /** A summary in lists and events; the whole customer (with identities) in the conversation detail. */
  customer: CustomerSummary | Customer
  customer_id: number
  assignee_id: number | null
  team_id: number | null
  channel_id: number | null
  origin_channel: ChannelKind
  last_channel: ChannelKind
  call_back: boolean
  created_at: string | null
  first_response_at: string | null
  resolved_at: string | null
  last_message_at: string | null
  last_activity_at: string | null
  snoozed_until: string | null
  topic_ids?: number[]
  topics?: TopicCount[]
  preview?: string | null
  last_message?: Pick<Message, 'text' | 'direction' | 'channel' | 'kind'> | null
  message_count?: number
  channels?: ChannelKind[]
  /** Detail only: the channels a reply can go out on, and the one to preselect. */
  reply_channels?: string[]
  default_reply_channel?: string | null
}

export interface Attachment {
  id: number
  filename: string
  content_type: string
  size: number
  inline: boolean
  content_id: string | null
  url: string
}

export interface Call {
  id: number
  sid: string
  direction: Direction
  status: string
  from: string | null
  to: string | null
  agent_id: number | null
  started_at: string | null
  answered_at: string | null
  ended_at: string | null
  duration: number | null
  recording_url: string | null
  recording_duration: number | null
  voicemail: boolean
  transcription: string | null
}

export interface Message {
  id: number
  conversation_id: number
  customer_id: number
  channel: ChannelKind | 'note' | string
  channel_id: number | null
  direction: Direction
  kind: MessageKind
  private: boolean
  author_id: number | null
  subject: string | null
  text: string
  html: string | null
  delivery_status: DeliveryStatus
  attempts: number
  error: string | null
  automated: boolean
  meta: Record<string, unknown>
  attachments: Attachment[]
  created_at: string | null
  sent_at: string | null
  call?: Call
}

export interface Channel {
  id: number
  kind: ChannelKind
  name: string
  address: string | null
  settings: Record<string, unknown>
  business_hours: Record<string, unknown> | null
  team_id: number | null
  enabled: boolean
  created_at: string | null
  token?: string
}

export interface Topic {
  id: number
  name: string
  parent_id: number | null
  colour: string
  archived: boolean
  /** "Parent / Child" */
  path?: string
  /** Offered to agents: neither it nor its parent is archived. */
  selectable?: boolean
}

export interface TopicRef {
  id: number
  name: string
  colour: string
  parent_id: number | null
}

export interface TopicSuggestion {
  topic: TopicRef
  path: string
  score: number
}

/** What the wrap-up prompt shows (GET /conversations/ID/wrapup). */
export interface WrapupInfo {
  conversation_id: number
  topic_required: boolean
  topics: TopicRef[]
  suggestions: TopicSuggestion[]
}

export interface CannedResponse {
  id: number
  shortcut: string
  title: string
  body: string
  created_at: string | null
  updated_at: string | null
}

/** A topic spike: more conversations on a topic than expected in a time window (app/services/spikes.py). */
export interface Alert {
  id: number
  topic_id: number | null
  topic: { id: number; name: string; parent_id: number | null; colour: string } | null
  status: string
  window_start: string | null
  window_end: string | null
  detected_at: string | null
  ended_at: string | null
  observed: number
  expected: number
  ratio: number | null
  acknowledged_at: string | null
  acknowledged_by_id: number | null
  conversations_url?: string
}

export interface Page<T> {
  items: T[]
  next_cursor: string | null
}

export interface LoginResponse {
  user: User
  csrf_token: string
  csrf_header?: string
}

export interface ApiErrorBody {
  error: { code: string; message: string; fields?: Record<string, string> }
}

// Real-time payloads
export interface TypingEvent {
  conversation_id: number
  user_id: number
  author_name?: string
  typing: boolean
  private?: boolean
}

/** One agent started or stopped looking at a conversation (sent to the others in its room). */
export interface ViewingEvent {
  conversation_id: number
  user_id: number
  name?: string
  viewing: boolean
}

export interface PresenceEvent {
  user_id: number
  available?: boolean
  online?: boolean
}

export interface WrapupEvent {
  reason: 'call' | 'resolved' | string
  conversation_id: number
  conversation_number?: number | null
  call_id?: number
  message_id?: number
  duration?: number | null
}

export interface MergedEvent {
  source_id: number
  target_id: number
  customer?: Customer
}
