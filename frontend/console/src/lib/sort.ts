// The inbox order: newest activity first, ties broken by id (the same keyset the API paginates on).
import type { Conversation } from '@shared/types'

export function activityKey(conversation: Conversation): number {
  const stamp = conversation.last_activity_at ?? conversation.last_message_at ?? conversation.created_at
  return stamp ? Date.parse(stamp) : 0
}

/** Negative when ``a`` sorts before ``b`` (more recent activity, then higher id). */
export function compareConversations(a: Conversation, b: Conversation): number {
  const diff = activityKey(b) - activityKey(a)
  return diff !== 0 ? diff : b.id - a.id
}

/** Index at which ``item`` belongs in the already sorted ``list`` (binary search, O(log n)). */
export function insertionIndex(list: readonly Conversation[], item: Conversation): number {
  let low = 0
  let high = list.length
  while (low < high) {
    const mid = (low + high) >>> 1
    if (compareConversations(list[mid], item) < 0) low = mid + 1
    else high = mid
  }
  return low
}

/**
 * Return a new list with ``item`` placed by activity, replacing any older copy of the same conversation.
 * The array is copied once; at 10,000 rows that costs well under a millisecond.
 */
export function upsertSorted(list: readonly Conversation[], item: Conversation): Conversation[] {
  const next = list.filter((row) => row.id !== item.id)
  next.splice(insertionIndex(next, item), 0, item)
  return next
}
