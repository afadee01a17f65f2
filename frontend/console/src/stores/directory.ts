// Reference data every screen needs: colleagues, teams, topics, channels, canned responses.
import { defineStore } from 'pinia'
import { computed, ref } from 'vue'
import type { CannedResponse, Channel, Team, Topic, User } from '@shared/types'
import { api } from '../api'

export const useDirectoryStore = defineStore('directory', () => {
  const users = ref<User[]>([])
  const teams = ref<Team[]>([])
  const topics = ref<Topic[]>([])
  const channels = ref<Channel[]>([])
  const canned = ref<CannedResponse[]>([])
  const loaded = ref(false)
  // Online/available state from presence.updated events, by user id.
  const presence = ref<Record<number, { online?: boolean; available?: boolean }>>({})

  const userById = computed(() => new Map(users.value.map((user) => [user.id, user])))
  const teamById = computed(() => new Map(teams.value.map((team) => [team.id, team])))
  const topicById = computed(() => new Map(topics.value.map((topic) => [topic.id, topic])))
  const activeTopics = computed(() => topics.value.filter((topic) => topic.selectable ?? !topic.archived))
  const activeUsers = computed(() => users.value.filter((user) => user.active))

  // Names learnt from events, for colleagues not (yet) in the user list.
  const knownNames = ref<Record<number, string>>({})

  function userName(id: number | null | undefined): string {
    if (id === null || id === undefined) return ''
    return userById.value.get(id)?.name ?? knownNames.value[id] ?? `#${id}`
  }

  function rememberName(id: number, name: string): void {
    if (knownNames.value[id] !== name) knownNames.value = { ...knownNames.value, [id]: name }
  }

  function topicLabel(id: number): string {
    const topic = topicById.value.get(id)
    if (!topic) return `#${id}`
    if (topic.path) return topic.path.replace(' / ', ' › ')
    const parent = topic.parent_id ? topicById.value.get(topic.parent_id) : undefined
    return parent ? `${parent.name} › ${topic.name}` : topic.name
  }

  async function settle<T>(promise: Promise<T>, fallback: T): Promise<T> {
    try {
      return await promise
    } catch {
      return fallback // a missing endpoint must not stop the console from working
    }
  }

  async function load(): Promise<void> {
    const [u, t, tp, c, cr] = await Promise.all([
      settle(api.users(), [] as User[]),
      settle(api.teams(), [] as Team[]),
      settle(api.topics(), [] as Topic[]),
      settle(api.channels(), [] as Channel[]),
      settle(api.canned(), [] as CannedResponse[]),
    ])
    users.value = u
    teams.value = t
    topics.value = tp
    channels.value = c
    canned.value = cr
    loaded.value = true
  }

  async function reloadCanned(): Promise<void> {
    canned.value = await settle(api.canned(), canned.value)
  }

  function setPresence(userId: number, state: { online?: boolean; available?: boolean }): void {
    presence.value = { ...presence.value, [userId]: { ...presence.value[userId], ...state } }
  }

  return {
    users,
    teams,
    topics,
    channels,
    canned,
    loaded,
    presence,
    userById,
    teamById,
    topicById,
    activeTopics,
    activeUsers,
    userName,
    rememberName,
    topicLabel,
    load,
    reloadCanned,
    setPresence,
  }
})
