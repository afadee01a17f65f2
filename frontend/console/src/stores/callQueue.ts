// Callers waiting in the phone queue: the list from the API, kept live by call_queue.updated events.
import { defineStore } from 'pinia'
import { computed, ref } from 'vue'
import { api } from '../api'
import {
  answerable,
  applyQueueEvent,
  sortQueue,
  type QueueAnswer,
  type QueueEntry,
  type QueueEvent,
} from '../lib/callQueue'

export const useCallQueueStore = defineStore('callQueue', () => {
  const items = ref<QueueEntry[]>([])
  const error = ref<string | null>(null)
  const answering = ref(false)
  const free = computed(() => answerable(items.value))

  async function load(): Promise<void> {
    try {
      items.value = sortQueue(await api.callQueue())
      error.value = null
    } catch (err) {
      error.value = err instanceof Error ? err.message : String(err)
    }
  }

  function apply(event: QueueEvent): void {
    if (!event || typeof event.call_id !== 'number') return
    items.value = applyQueueEvent(items.value, event)
  }

  /** Ring my phone for the next caller (or ``callId``); errors are thrown for the caller to show. */
  async function answer(callId?: number): Promise<QueueAnswer> {
    answering.value = true
    try {
      const result = await api.answerQueue(callId)
      if (result.entry) apply({ call_id: result.entry.call_id, waiting: true, entry: result.entry, result: null })
      return result
    } finally {
      answering.value = false
    }
  }

  return { items, free, error, answering, load, apply, answer }
})
