// Spooled mail that failed and waits for an admin's retry: the count on the Admin link, kept live by
// inbound_mail.failed events (admins only).
import { defineStore } from 'pinia'
import { ref } from 'vue'
import { api } from '../api'

export const useInboundMailStore = defineStore('inboundMail', () => {
  const failed = ref(0)

  async function load(): Promise<void> {
    try {
      failed.value = (await api.inboundMailCounts()).failed
    } catch {
      // the count stays as it was; the Admin page shows the list and any error
    }
  }

  function apply(count: number): void {
    failed.value = count
  }

  return { failed, load, apply }
})
