// Canned response placeholders, filled in when an agent inserts a snippet (the server validates names).
import { firstName } from './format'

export interface PlaceholderContext {
  customer?: { name: string | null } | null
  agent?: { name: string } | null
  conversation?: { number: number | null; id: number } | null
}

const PLACEHOLDER = /\{\{\s*([a-z_.]+)\s*\}\}/g

export function placeholderValue(name: string, context: PlaceholderContext): string | undefined {
  switch (name) {
    case 'customer.name':
      return context.customer?.name ?? ''
    case 'customer.first_name':
      return firstName(context.customer?.name)
    case 'agent.name':
      return context.agent?.name ?? ''
    case 'agent.first_name':
      return firstName(context.agent?.name)
    case 'conversation.number': {
      const conversation = context.conversation
      return conversation ? String(conversation.number ?? conversation.id) : ''
    }
    default:
      return undefined
  }
}

/** Replace known placeholders; unknown ones stay visible so the agent notices them before sending. */
export function renderCanned(body: string, context: PlaceholderContext): string {
  return body.replace(PLACEHOLDER, (whole, name: string) => placeholderValue(name, context) ?? whole)
}
