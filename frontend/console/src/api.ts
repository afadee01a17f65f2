// The console's view of the REST API under /api/v1 (the contract in DESIGN.md, shapes in app/serializers.py).
import { Http } from '@shared/http'
import type {
  Alert,
  Call,
  CannedResponse,
  Channel,
  Conversation,
  ConversationStatus,
  Customer,
  Identity,
  IdentityKind,
  LoginResponse,
  Message,
  Page,
  Team,
  Topic,
  TopicRef,
  TopicSuggestion,
  User,
  WrapupInfo,
} from '@shared/types'
import type { QueueAnswer, QueueEntry } from './lib/callQueue'

export const http = new Http('/api/v1')

export interface ConversationFilters {
  status?: ConversationStatus | 'all' | ''
  assignee?: 'me' | 'none' | number | ''
  team?: number | ''
  channel?: string
  topic?: number | ''
  q?: string
  customer?: number
}

export interface ConversationPatch {
  status?: ConversationStatus
  assignee_id?: number | null
  team_id?: number | null
  snoozed_until?: string | null
}

export interface NewMessage {
  body: string
  channel?: string
  private?: boolean
  /** Attachments: when given, the message goes as multipart/form-data. */
  files?: File[]
}

/** The conversation's ``reply_attachments`` (app/api/conversations.py): what may be attached to a reply. */
export interface ReplyAttachmentLimits {
  channels: string[]
  max_files: number
  max_file_bytes: number
  max_total_bytes: number
}

export const DEFAULT_ATTACHMENT_LIMITS: ReplyAttachmentLimits = {
  channels: ['email', 'chat', 'api'],
  max_files: 10,
  max_file_bytes: 10 * 1024 * 1024,
  max_total_bytes: 15 * 1024 * 1024,
}

/** A reply with files as the multipart form the reply endpoint reads: body, channel, private and files. */
export function messageForm(message: NewMessage): FormData {
  const form = new FormData()
  form.append('body', message.body)
  if (message.channel) form.append('channel', message.channel)
  form.append('private', message.private ? 'true' : 'false')
  for (const file of message.files ?? []) form.append('files', file, file.name)
  return form
}

export interface ReportQuery {
  from?: string
  to?: string
  interval?: 'hour' | 'day' | 'week'
  channel?: string
}

export interface DurationSummary {
  count: number
  median_seconds: number | null
  p90_seconds: number | null
}

export interface DurationRow {
  conversations: number
  first_response: DurationSummary
  resolution: DurationSummary
}

export interface ReportTopicRow {
  id: number | null
  name: string
  parent_id: number | null
  colour: string
  archived: boolean
  counts: number[]
  total: number
  previous_total: number
  change: number | null
}

/** GET /reports/topics (app/services/reports.py): buckets in the organisation's time zone. */
export interface TopicReport {
  from: string
  to: string
  interval: 'hour' | 'day' | 'week'
  timezone: string
  buckets: string[]
  totals: { counts: number[]; total: number; previous_total: number; change: number | null }
  topics: ReportTopicRow[]
  movers?: { topic_id: number; name: string; colour: string; total: number; previous_total: number; delta: number }[]
  times?: {
    overall: DurationRow
    by_topic: (DurationRow & { topic_id: number | null; name: string })[]
    by_channel: (DurationRow & { channel_id?: number | null; name?: string; kind?: string })[]
    by_agent: (DurationRow & { agent_id: number | null; name: string })[]
  }
}

export type InboundMailStatus = 'queued' | 'processing' | 'stored' | 'rejected' | 'failed'

/** One mail accepted over SMTP and what became of it (``inbound_mail_dict`` in app/api/inbound_mail.py). */
export interface InboundMail {
  id: number
  received_at: string
  /** The envelope sender: "<>" (or nothing) for bounces. */
  mail_from: string | null
  recipients: string[]
  size: number
  status: InboundMailStatus
  attempts: number
  next_attempt_at: string | null
  /** The stored message or bounce, or why it was refused or failed (the server's words, in English). */
  outcome: string | null
  message_id: number | null
  processed_at: string | null
}

/** The spool pages by id, not by cursor: ``next_before`` is null on the last page. */
export interface InboundMailPage {
  items: InboundMail[]
  next_before: number | null
}

type Items<T> = { items: T[] }

function list<T>(data: Items<T> | T[]): T[] {
  return Array.isArray(data) ? data : data.items
}

export const api = {
  login: (email: string, password: string) => http.post<LoginResponse>('/auth/login', { email, password }),
  logout: () => http.post<{ ok: boolean }>('/auth/logout'),
  me: () => http.get<LoginResponse>('/auth/me'),

  conversations: (filters: ConversationFilters, cursor?: string | null, limit = 50) =>
    http.get<Page<Conversation>>('/conversations', {
      status: filters.status === 'all' ? undefined : filters.status,
      assignee: filters.assignee,
      team: filters.team,
      channel: filters.channel,
      topic: filters.topic,
      q: filters.q,
      customer: filters.customer,
      cursor: cursor ?? undefined,
      limit,
    }),
  conversation: (id: number) => http.get<Conversation>(`/conversations/${id}`),
  patchConversation: (id: number, patch: ConversationPatch) =>
    http.patch<Conversation>(`/conversations/${id}`, patch),
  /** Oldest first; ``next_cursor`` continues forward in time. */
  messages: (id: number, cursor?: string | null, limit = 200) =>
    http.get<Page<Message>>(`/conversations/${id}/messages`, { cursor: cursor ?? undefined, limit }),
  sendMessage: (id: number, message: NewMessage) => {
    const { files, ...json } = message
    return http.post<Message>(`/conversations/${id}/messages`, files?.length ? messageForm(message) : json)
  },
  /** Click-to-call: Twilio rings the agent's phone, then bridges to the customer. */
  call: (id: number) => http.post<{ call: Call; message: Message }>(`/conversations/${id}/calls`, {}),
  /** Callers waiting in the phone queue, longest waiting first. */
  callQueue: async () => (await http.get<{ items: QueueEntry[] }>('/calls/queue')).items,
  /** Ring my phone; picking up connects the next waiting caller (or ``callId``, when it is next). */
  answerQueue: (callId?: number) =>
    http.post<QueueAnswer>('/calls/queue/answer', callId === undefined ? {} : { call_id: callId }),
  setTopics: (id: number, topicIds: number[]) =>
    http.put<{ topic_ids: number[]; topics: TopicRef[] }>(`/conversations/${id}/topics`, { topic_ids: topicIds }),
  wrapup: (id: number) => http.get<WrapupInfo>(`/conversations/${id}/wrapup`),
  topicSuggestions: async (id: number) =>
    (await http.get<{ items: TopicSuggestion[] }>(`/conversations/${id}/topic-suggestions`)).items,

  customers: async (q: string) => list(await http.get<Items<Customer>>('/customers', { q })),
  customer: (id: number) => http.get<Customer>(`/customers/${id}`),
  customerConversations: (id: number, cursor?: string | null, limit = 100) =>
    http.get<Page<Conversation>>(`/customers/${id}/conversations`, { cursor: cursor ?? undefined, limit }),
  timeline: (id: number, cursor?: string | null) =>
    http.get<Page<Message>>(`/customers/${id}/timeline`, { cursor: cursor ?? undefined }),
  addIdentity: (id: number, kind: IdentityKind, value: string) =>
    http.post<Identity>(`/customers/${id}/identities`, { kind, value }),
  mergeCustomer: (targetId: number, sourceId: number) =>
    http.post<Customer>(`/customers/${targetId}/merge`, { source_id: sourceId }),

  topics: async () => list(await http.get<Items<Topic> | Topic[]>('/topics')),
  createTopic: (topic: { name: string; parent_id?: number | null; colour?: string }) =>
    http.post<Topic>('/topics', topic),
  patchTopic: (id: number, patch: Partial<Pick<Topic, 'name' | 'colour' | 'archived' | 'parent_id'>>) =>
    http.patch<Topic>(`/topics/${id}`, patch),

  users: async () => list(await http.get<Items<User> | User[]>('/users')),
  createUser: (user: { email: string; name: string; password: string; role: string; team_ids?: number[] }) =>
    http.post<User>('/users', user),
  patchUser: (id: number, patch: Partial<User> & { password?: string }) => http.patch<User>(`/users/${id}`, patch),
  patchMe: (patch: { name?: string; locale?: string; available?: boolean }) => http.patch<User>('/me', patch),
  teams: async () => list(await http.get<Items<Team> | Team[]>('/teams')),
  createTeam: (team: { name: string; member_ids?: number[] }) => http.post<Team>('/teams', team),
  channels: async () => list(await http.get<Items<Channel> | Channel[]>('/channels')),
  createChannel: (channel: { kind: string; name: string; address?: string | null; team_id?: number | null }) =>
    http.post<Channel>('/channels', channel),
  patchChannel: (id: number, patch: Partial<Channel>) => http.patch<Channel>(`/channels/${id}`, patch),

  canned: async () => list(await http.get<Items<CannedResponse> | CannedResponse[]>('/canned-responses')),
  createCanned: (item: { shortcut: string; title: string; body: string }) =>
    http.post<CannedResponse>('/canned-responses', item),
  patchCanned: (id: number, patch: Partial<Pick<CannedResponse, 'shortcut' | 'title' | 'body'>>) =>
    http.patch<CannedResponse>(`/canned-responses/${id}`, patch),
  deleteCanned: (id: number) => http.delete<unknown>(`/canned-responses/${id}`),

  /** Mail accepted over SMTP, newest first (admins); ``before`` is the previous page's ``next_before``. */
  inboundMail: (status: InboundMailStatus | 'all', before?: number | null, limit = 50) =>
    http.get<InboundMailPage>('/inbound-mail', {
      status: status === 'all' ? undefined : status,
      before: before ?? undefined,
      limit,
    }),
  inboundMailCounts: () => http.get<Record<InboundMailStatus, number>>('/inbound-mail/counts'),
  inboundMailItem: (id: number) => http.get<InboundMail>(`/inbound-mail/${id}`),
  /** A link, not a call: the browser downloads the .eml with the session cookie. */
  inboundMailRawUrl: (id: number) => `${http.base}/inbound-mail/${id}/raw`,
  /** Queue a failed mail for the worker again; 409 ``not_failed`` for any other status. */
  retryInboundMail: (id: number) => http.post<InboundMail>(`/inbound-mail/${id}/retry`),

  topicReport: (query: ReportQuery) => http.get<TopicReport>('/reports/topics', { ...query }),
  alerts: async () => list(await http.get<Items<Alert> | Alert[]>('/alerts')),
  acknowledgeAlert: (id: number) => http.post<Alert>(`/alerts/${id}/acknowledge`),
}

export type Api = typeof api
