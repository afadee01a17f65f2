import { createRouter, createWebHistory, type RouteRecordRaw } from 'vue-router'
import type { Role } from '@shared/types'
import { useAuthStore } from './stores/auth'
import InboxView from './views/InboxView.vue'
import LoginView from './views/LoginView.vue'

declare module 'vue-router' {
  interface RouteMeta {
    public?: boolean
    role?: Role
  }
}

export const routes: RouteRecordRaw[] = [
  { path: '/', redirect: '/inbox' },
  { path: '/login', name: 'login', component: LoginView, meta: { public: true } },
  { path: '/inbox/:id(\\d+)?', name: 'inbox', component: InboxView },
  {
    path: '/supervisor',
    name: 'supervisor',
    component: () => import('./views/SupervisorView.vue'),
    meta: { role: 'supervisor' },
  },
  { path: '/admin/:section?', name: 'admin', component: () => import('./views/AdminView.vue'), meta: { role: 'admin' } },
  { path: '/:rest(.*)*', redirect: '/inbox' },
]

export function createConsoleRouter(base = '/app/') {
  const router = createRouter({ history: createWebHistory(base), routes })
  router.beforeEach(async (to) => {
    const auth = useAuthStore()
    await auth.restore()
    if (to.meta.public) return to.name === 'login' && auth.isAuthenticated ? { name: 'inbox' } : true
    if (!auth.isAuthenticated) return { name: 'login', query: to.fullPath !== '/inbox' ? { next: to.fullPath } : {} }
    if (to.meta.role && !auth.hasRole(to.meta.role)) return { name: 'inbox' }
    return true
  })
  return router
}
