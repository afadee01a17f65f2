import { defineStore } from 'pinia'
import { computed, ref } from 'vue'
import type { Role, User } from '@shared/types'
import { ApiError } from '@shared/http'
import { api, http } from '../api'

const RANK: Record<Role, number> = { agent: 0, supervisor: 1, admin: 2 }

export const useAuthStore = defineStore('auth', () => {
  const user = ref<User | null>(null)
  // unknown until the first /auth/me answers, so the router knows whether to wait.
  const state = ref<'unknown' | 'anonymous' | 'authenticated'>('unknown')
  const error = ref<string | null>(null)
  let restoring: Promise<void> | null = null

  const isAuthenticated = computed(() => state.value === 'authenticated')

  function hasRole(role: Role): boolean {
    return !!user.value && RANK[user.value.role] >= RANK[role]
  }

  function accept(next: User, csrf: string, header?: string): void {
    user.value = next
    http.csrfToken = csrf
    if (header) http.csrfHeader = header
    state.value = 'authenticated'
  }

  function forget(): void {
    user.value = null
    http.csrfToken = ''
    state.value = 'anonymous'
  }

  /** Ask the server whether our session cookie is still good (once; later callers share the answer). */
  function restore(): Promise<void> {
    if (state.value !== 'unknown') return Promise.resolve()
    restoring ??= api
      .me()
      .then((answer) => accept(answer.user, answer.csrf_token, answer.csrf_header))
      .catch(() => forget())
      .finally(() => {
        restoring = null
      })
    return restoring
  }

  async function login(email: string, password: string): Promise<boolean> {
    error.value = null
    try {
      const answer = await api.login(email, password)
      accept(answer.user, answer.csrf_token, answer.csrf_header)
      return true
    } catch (err) {
      error.value = err instanceof ApiError ? err.code : 'network_error'
      return false
    }
  }

  async function logout(): Promise<void> {
    try {
      await api.logout()
    } finally {
      forget()
    }
  }

  return { user, state, error, isAuthenticated, hasRole, restore, login, logout, forget, accept }
})
