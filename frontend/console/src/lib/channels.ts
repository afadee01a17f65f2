// Which channels an agent can reply on: only those for which the customer has an identity.
import type { ChannelKind, Conversation, Identity } from '@shared/types'

export type ReplyChannel = 'email' | 'sms' | 'chat' | 'api'

/** The identity kind a reply channel sends to. */
const NEEDS: Record<ReplyChannel, Identity['kind'] | null> = {
  email: 'email',
  sms: 'phone',
  chat: 'chat',
  api: null,
}

/** Inbound channels that have no reply path of their own map to the one customers expect. */
const REPLY_FOR: Partial<Record<ChannelKind, ReplyChannel>> = {
  email: 'email',
  sms: 'sms',
  voice: 'sms',
  chat: 'chat',
  form: 'email',
  api: 'api',
}

export function replyChannels(identities: readonly Identity[], conversation?: Conversation | null): ReplyChannel[] {
  const kinds = new Set(identities.filter((i) => !(i.kind === 'phone' && i.opted_out)).map((i) => i.kind))
  const result = (Object.keys(NEEDS) as ReplyChannel[]).filter((channel) => {
    const needed = NEEDS[channel]
    if (needed === null) {
      // An api conversation replies through the system that sent it.
      return conversation?.origin_channel === 'api' || conversation?.last_channel === 'api'
    }
    return kinds.has(needed)
  })
  return result
}

/** The channel the customer last used when the agent can reply on it, else the first available. */
export function defaultReplyChannel(
  available: readonly ReplyChannel[],
  conversation?: Conversation | null,
  lastInboundChannel?: string | null,
): ReplyChannel | null {
  const preferred = [lastInboundChannel, conversation?.last_channel, conversation?.origin_channel]
  for (const channel of preferred) {
    const mapped = channel ? REPLY_FOR[channel as ChannelKind] : undefined
    if (mapped && available.includes(mapped)) return mapped
  }
  return available[0] ?? null
}
