/**
 * @module The normalized conversation model (SPEC §3). Every channel maps onto these records.
 */

/**
 * `whatsapp` is WhatsApp through Twilio; `whatsapp_cloud` is WhatsApp through Meta's Cloud API
 * directly (adapters/whatsapp-cloud). They are different channels: each adapter answers for its own
 * conversations, and a number can be served by both during a migration without either taking the
 * other's conversations. Contacts link them through the shared E.164 number (src/contacts/rules.ts).
 */
export const CHANNELS = ['whatsapp', 'sms', 'slack', 'email', 'webchat', 'api', 'whatsapp_cloud'] as const;
export type ChannelName = (typeof CHANNELS)[number];

export const CONVERSATION_STATUSES = ['open', 'handoff', 'closed'] as const;
export type ConversationStatus = (typeof CONVERSATION_STATUSES)[number];

/** SPEC §3's four, and `agent` (SPEC §8): a human agent's message sent out through the channel. */
export const MESSAGE_TYPES = ['user', 'bot', 'context', 'activity', 'agent'] as const;
export type MessageType = (typeof MESSAGE_TYPES)[number];

export const DIRECTIONS = ['inbound', 'outbound', 'internal'] as const;
export type Direction = (typeof DIRECTIONS)[number];

export const PARTICIPANT_ROLES = ['user', 'bot', 'agent'] as const;
export type ParticipantRole = (typeof PARTICIPANT_ROLES)[number];

/** Delivery statuses in their only allowed order; `failed` is terminal from any state. */
export const DELIVERY_STATUSES = ['pending', 'sent', 'delivered', 'read', 'failed'] as const;
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];

export type Meta = Record<string, unknown>;

export interface Participant {
  id: string;
  role: ParticipantRole;
  address?: string;
  name?: string;
  /** For user participants: the contact they are (SPEC §9). */
  contactId?: string;
}

/** SPEC §8: where a handoff to humans stands. */
export const HANDOFF_STATES = ['pending', 'assigned'] as const;
export type HandoffState = (typeof HANDOFF_STATES)[number];

/** SPEC §8: who asked for the handoff. */
export const HANDOFF_REQUESTERS = ['bot', 'customer', 'agent', 'system'] as const;
export type HandoffRequester = (typeof HANDOFF_REQUESTERS)[number];

/** SPEC §8: the handoff a conversation in status `handoff` carries. */
export interface Handoff {
  state: HandoffState;
  reason: string;
  requestedBy: HandoffRequester;
  /** The agent participant's id, once assigned. */
  assignee?: string;
  requestedAt: string;
  assignedAt?: string;
  /** When the idle release gives the conversation back to the bot, unless an agent acts first. */
  releaseAt?: string;
}

/**
 * Left by the end of a handoff until the bot is asked again: every message up to `afterSeq` was said
 * while humans had the conversation, so the bot never sees it as a request of its own; the next bot
 * request is flagged `resumed`.
 */
export interface HandoffResume {
  afterSeq: number;
  at: string;
}

/**
 * SPEC §9, contact scope: one channel thread a conversation is reached by, with what the channel
 * needs to answer on it (the meta that thread's first message brought).
 */
export interface Route {
  channel: ChannelName;
  channelRef: string;
  meta: Meta;
}

export interface Conversation {
  id: string;
  channel: ChannelName;
  /** The channel's own key for the thread (phone pair, Slack team+channel+thread, email root, visitor). */
  channelRef: string;
  participants: Participant[];
  status: ConversationStatus;
  /** SPEC §8: set exactly while `status` is `handoff`, otherwise null. */
  handoff: Handoff | null;
  /** Present from the end of a handoff until the bot's next request (see {@link HandoffResume}). */
  handoffResume?: HandoffResume;
  /**
   * Contact scope (SPEC §9): every channel thread the conversation is reached by, the first being its
   * own `channel`/`channelRef`. Absent on conversations of the channel scope.
   */
  routes?: Route[];
  sessionId: string;
  sessionStartedAt: string;
  /** State kept for the current session only; reset when a new session starts. */
  sessionState: Meta;
  meta: Meta;
  createdAt: string;
  updatedAt: string;
  lastMessageAt: string | null;
}

export interface Entity {
  type: 'email' | 'phone' | 'card' | 'iban';
  start: number;
  end: number;
  /** The span is a mask (`[email]` ...) put in place of the data (`PII_REDACT`, SPEC §12). */
  redacted?: true;
}

export interface Attachment {
  url: string;
  contentType: string;
  name?: string;
  size?: number;
}

export interface QuickReply {
  title: string;
  payload?: string;
}

export interface Delivery {
  status: DeliveryStatus;
  error?: { code?: string; message: string };
  at: string;
}

/** Where an inbound message is in the bot pipeline; visible in the API. */
export interface Processing {
  state: 'queued' | 'processing' | 'done' | 'skipped' | 'error';
  attempts: number;
  error?: { code: string; message: string };
  /** Ids of the bot replies recorded for this message (set once; makes redelivery idempotent). */
  replyIds?: string[];
  at: string;
}

export interface Message {
  id: string;
  conversationId: string;
  seq: number;
  type: MessageType;
  text: string;
  name?: string;
  description?: string;
  meta: Meta;
  entities: Entity[];
  direction: Direction;
  /**
   * Contact scope (SPEC §9): the channel thread the message came in by or went out through (a reply
   * leaves through the thread of the message it answers).
   */
  channel?: ChannelName;
  channelRef?: string;
  externalId?: string;
  clientMessageId?: string;
  sessionId?: string;
  attachments: Attachment[];
  quickReplies?: QuickReply[];
  /** Outbound messages only. */
  delivery?: Delivery;
  /** Inbound messages that pass through the queue only. */
  processing?: Processing;
  /** For bot replies: the inbound message they answer. */
  replyTo?: string;
  /** SPEC §8: the participant who wrote it (the customer, the agent; for an activity, who joined or left). */
  participantId?: string;
  /**
   * SPEC §12: the W3C `traceparent` of the trace the message belongs to (its accept, or for a reply
   * the processing that wrote it); only while tracing is on. It carries the trace across processes.
   */
  traceparent?: string;
  createdAt: string;
  updatedAt: string;
}

/** True when moving from `from` to `to` is a forward step (SPEC §3: delivery only moves forward). */
export function isDeliveryAdvance(from: DeliveryStatus, to: DeliveryStatus): boolean {
  if (from === 'failed') return false;
  if (to === 'failed') return true;
  return DELIVERY_STATUSES.indexOf(to) > DELIVERY_STATUSES.indexOf(from);
}
