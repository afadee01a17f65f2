// The customer beside the open conversation: identities, previous conversations, topics, merge.
import { defineStore } from 'pinia'
import { computed, ref } from 'vue'
import type { Conversation, Customer, IdentityKind, MergedEvent, TopicCount } from '@shared/types'
import { api } from '../api'

export const useCustomerStore = defineStore('customer', () => {
  const customer = ref<Customer | null>(null)
  const conversations = ref<Conversation[]>([])
  const loading = ref(false)
  const error = ref<string | null>(null)
  let generation = 0

  const identities = computed(() => customer.value?.identities ?? [])

  /** Topics this customer's conversations were tagged with before, most frequent first. */
  const topicsSeen = computed<TopicCount[]>(() => {
    if (customer.value?.topics?.length) return customer.value.topics
    const counts = new Map<number, TopicCount>()
    for (const conversation of conversations.value) {
      const topics = conversation.topics ?? (conversation.topic_ids ?? []).map((id) => ({ id, name: `#${id}` }))
      for (const topic of topics) {
        const seen = counts.get(topic.id)
        counts.set(topic.id, { ...topic, count: (seen?.count ?? 0) + 1 })
      }
    }
    return [...counts.values()].sort((a, b) => (b.count ?? 0) - (a.count ?? 0))
  })

  async function load(id: number): Promise<void> {
    const mine = ++generation
    loading.value = true
    error.value = null
    if (customer.value?.id !== id) {
      customer.value = null
      conversations.value = []
    }
    try {
      const [detail, history] = await Promise.all([
        api.customer(id),
        api.customerConversations(id).catch(() => null),
      ])
      if (mine !== generation) return
      // A merged-away customer answers with its survivor's id; follow it.
      customer.value = detail
      conversations.value = history?.items ?? detail.conversations ?? []
    } catch (err) {
      if (mine === generation) error.value = err instanceof Error ? err.message : String(err)
    } finally {
      if (mine === generation) loading.value = false
    }
  }

  async function reload(): Promise<void> {
    if (customer.value) await load(customer.value.id)
  }

  async function addIdentity(kind: IdentityKind, value: string): Promise<void> {
    if (!customer.value) return
    await api.addIdentity(customer.value.id, kind, value)
    await reload()
  }

  /** Merge ``sourceId`` into the current customer; the server writes the audit record. */
  async function merge(sourceId: number): Promise<void> {
    if (!customer.value) return
    await api.mergeCustomer(customer.value.id, sourceId)
    await reload()
  }

  function search(q: string): Promise<Customer[]> {
    return api.customers(q)
  }

  function applyCustomer(next: Customer): void {
    if (customer.value && next.id === customer.value.id) customer.value = { ...customer.value, ...next }
  }

  function applyMerged(event: MergedEvent): void {
    if (!customer.value) return
    if (event.source_id === customer.value.id) void load(event.target_id)
    else if (event.target_id === customer.value.id) void reload()
  }

  function clear(): void {
    generation += 1
    customer.value = null
    conversations.value = []
  }

  return {
    customer,
    conversations,
    loading,
    error,
    identities,
    topicsSeen,
    load,
    reload,
    addIdentity,
    merge,
    search,
    applyCustomer,
    applyMerged,
    clear,
  }
})
