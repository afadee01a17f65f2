// The phone queue as the console sees it: GET /api/v1/calls/queue and call_queue.updated events
// (app/services/calls.py). Pure helpers, so the store and the tests share them.
import type { Call } from '@shared/types'

/** One caller waiting in a Twilio queue for an agent. */
export interface QueueEntry {
  call_id: number
  sid: string
  message_id: number
  conversation_id: number
  conversation_number: number
  customer: { id: number; name: string | null }
  from: string | null
  channel_id: number | null
  queue: string | null
  entered_at: string | null
  wait_seconds: number
  /** 1 = the caller Twilio bridges next in their queue. */
  position: number | null
  /** The agent whose phone is ringing to take this caller, if any. */
  answering: { agent_id: number; name: string | null; since: string | null } | null
}

/** The payload of call_queue.updated: the caller's entry while they wait, else only that they left. */
export interface QueueEvent {
  call_id: number
  waiting: boolean
  entry: QueueEntry | null
  result: string | null
}

/** POST /api/v1/calls/queue/answer: the agent's phone (or Twilio Client) is ringing. */
export interface QueueAnswer {
  call: Call
  entry: QueueEntry
  agent_call_sid: string
  ringing: string
}

function enteredMs(entry: QueueEntry): number {
  const at = entry.entered_at ? Date.parse(entry.entered_at) : Number.NaN
  return Number.isNaN(at) ? Number.POSITIVE_INFINITY : at
}

/** Longest waiting first, as Twilio dequeues them. */
export function sortQueue(items: QueueEntry[]): QueueEntry[] {
  return [...items].sort((a, b) => enteredMs(a) - enteredMs(b) || a.call_id - b.call_id)
}

/** Apply one event to the list: a waiting caller is added or replaced, a caller who left is removed. */
export function applyQueueEvent(items: QueueEntry[], event: QueueEvent): QueueEntry[] {
  const rest = items.filter((item) => item.call_id !== event.call_id)
  return event.waiting && event.entry ? sortQueue([...rest, event.entry]) : rest
}

/** Callers nobody is answering yet: what the Answer button can still take. */
export function answerable(items: QueueEntry[]): QueueEntry[] {
  return items.filter((item) => item.answering === null)
}

/** Seconds the longest waiting caller has waited, at ``now`` (ms). */
export function longestWait(items: QueueEntry[], now: number = Date.now()): number {
  let oldest = Number.POSITIVE_INFINITY
  for (const item of items) oldest = Math.min(oldest, enteredMs(item))
  return Number.isFinite(oldest) ? Math.max(0, Math.floor((now - oldest) / 1000)) : 0
}
