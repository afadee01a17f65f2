// Socket.IO event names, mirroring app/events.py. The console and the widget import these, never strings.
export const MESSAGE_CREATED = 'message.created'
export const MESSAGE_UPDATED = 'message.updated'
export const CONVERSATION_CREATED = 'conversation.created'
export const CONVERSATION_UPDATED = 'conversation.updated'
export const CUSTOMER_UPDATED = 'customer.updated'
export const CUSTOMER_MERGED = 'customer.merged'
export const TYPING = 'typing'
export const PRESENCE_UPDATED = 'presence.updated'
export const ALERT_CREATED = 'alert.created'
export const WRAPUP_REQUESTED = 'wrapup.requested'
export const VIEWING = 'viewing'
// A caller joined or left the phone queue, or an agent started answering them (app/services/calls.py).
export const CALL_QUEUE_UPDATED = 'call_queue.updated'
// Admins only: how many spooled mails failed and wait for a retry (app/services/mail.py).
export const INBOUND_MAIL_FAILED = 'inbound_mail.failed'

// What the console sends on /agent (handled by app/realtime/agent.py).
export const CLIENT_VIEW = 'view'
export const CLIENT_LEAVE = 'leave'
export const CLIENT_TYPING = 'typing'

export const AGENT_NAMESPACE = '/agent'
export const WIDGET_NAMESPACE = '/widget'

export type EventName =
  | typeof MESSAGE_CREATED
  | typeof MESSAGE_UPDATED
  | typeof CONVERSATION_CREATED
  | typeof CONVERSATION_UPDATED
  | typeof CUSTOMER_UPDATED
  | typeof CUSTOMER_MERGED
  | typeof TYPING
  | typeof PRESENCE_UPDATED
  | typeof ALERT_CREATED
  | typeof WRAPUP_REQUESTED
  | typeof VIEWING
  | typeof CALL_QUEUE_UPDATED
  | typeof INBOUND_MAIL_FAILED
