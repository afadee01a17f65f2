// Test helpers: mount a component with a fresh Pinia, the real i18n and an in-memory router.
import { mount, type ComponentMountingOptions } from '@vue/test-utils'
import { createPinia, setActivePinia, type Pinia } from 'pinia'
import { createMemoryHistory, createRouter } from 'vue-router'
import type { Component } from 'vue'
import type { Conversation, Customer, Identity, Message, User } from '@shared/types'
import { i18n, setLocale } from '@console/i18n'
import { routes } from '@console/router'

export function freshPinia(): Pinia {
  const pinia = createPinia()
  setActivePinia(pinia)
  return pinia
}

export function testRouter() {
  return createRouter({ history: createMemoryHistory(), routes })
}

export function mountWith<C extends Component>(component: C, options: ComponentMountingOptions<C> = {}) {
  setLocale('en')
  const pinia = freshPinia()
  const router = testRouter()
  const wrapper = mount(component, {
    ...options,
    global: { plugins: [pinia, i18n, router], ...(options.global ?? {}) },
  } as ComponentMountingOptions<C>)
  return { wrapper, pinia, router }
}

let seq = 1000

export function user(overrides: Partial<User> = {}): User {
  const id = overrides.id ?? ++seq
  return {
    id,
    email: `agent${id}@example.com`,
    name: `Agent ${id}`,
    role: 'agent',
    active: true,
    available: true,
    locale: 'en',
    phone: null,
    client_identity: null,
    team_ids: [],
    ...overrides,
  }
}

export function conversation(overrides: Partial<Conversation> = {}): Conversation {
  const id = overrides.id ?? ++seq
  return {
    id,
    number: id,
    status: 'open',
    subject: `Subject ${id}`,
    customer: { id: 1, name: 'Anna Kowalska' },
    customer_id: 1,
    assignee_id: null,
    team_id: null,
    channel_id: null,
    origin_channel: 'email',
    last_channel: 'email',
    call_back: false,
    created_at: '2030-01-01T10:00:00Z',
    first_response_at: null,
    resolved_at: null,
    last_message_at: '2030-01-01T10:00:00Z',
    last_activity_at: '2030-01-01T10:00:00Z',
    snoozed_until: null,
    topic_ids: [],
    topics: [],
    preview: 'Hello',
    ...overrides,
  }
}

export function message(overrides: Partial<Message> = {}): Message {
  const id = overrides.id ?? ++seq
  return {
    id,
    conversation_id: 1,
    customer_id: 1,
    channel: 'email',
    channel_id: null,
    direction: 'in',
    kind: 'message',
    private: false,
    author_id: null,
    subject: null,
    text: `Message ${id}`,
    html: null,
    delivery_status: 'received',
    attempts: 0,
    error: null,
    automated: false,
    meta: {},
    attachments: [],
    created_at: '2030-01-01T10:00:00Z',
    sent_at: null,
    ...overrides,
  }
}

export function identity(overrides: Partial<Identity> = {}): Identity {
  return {
    id: ++seq,
    kind: 'email',
    value: 'anna@example.com',
    verified: true,
    source: 'email',
    opted_out: false,
    created_at: '2030-01-01T10:00:00Z',
    ...overrides,
  }
}

export function customer(overrides: Partial<Customer> = {}): Customer {
  return {
    id: 1,
    name: 'Anna Kowalska',
    attributes: {},
    created_at: '2030-01-01T10:00:00Z',
    last_seen_at: null,
    merged_into_id: null,
    identities: [identity()],
    ...overrides,
  }
}

export const flush = () => new Promise((resolve) => setTimeout(resolve, 0))
