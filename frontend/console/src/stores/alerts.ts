// Spike alerts for supervisors: the list from the API plus alert.created events as they happen.
import { defineStore } from 'pinia'
import { ref } from 'vue'
import type { Alert } from '@shared/types'
import { api } from '../api'

export const useAlertsStore = defineStore('alerts', () => {
  const items = ref<Alert[]>([])
  const unseen = ref(0)
  const error = ref<string | null>(null)

  async function load(): Promise<void> {
    try {
      items.value = await api.alerts()
      error.value = null
    } catch (err) {
      error.value = err instanceof Error ? err.message : String(err)
    }
  }

  function apply(alert: Alert): void {
    items.value = [alert, ...items.value.filter((item) => item.id !== alert.id)]
    unseen.value += 1
  }

  function markSeen(): void {
    unseen.value = 0
  }

  return { items, unseen, error, load, apply, markSeen }
})
