/**
 * @module The public webhook event schema (version 1). Domain events from the hub are turned into this
 * stable shape once, serialised once, and the same bytes go to every subscribed endpoint. Fields are
 * only ever added within a version; a breaking change gets a new `version`.
 */
import { type DomainEvent, EVENT_TYPES, type EventType } from '../core/events.js';
import { newId } from '../core/ids.js';
import type { Conversation, Message, Participant } from '../core/model.js';

/** The schema version carried by every event. */
export const EVENT_VERSION = 1;

/** Event types an endpoint can subscribe to. `ping` is sent on request only and needs no subscription. */
export const SUBSCRIBABLE_EVENTS: readonly EventType[] = EVENT_TYPES;

export type WebhookEventType = EventType | 'ping';

/** What a receiver gets as the JSON body of each delivery. */
export interface WebhookEvent {
  /** `evt_…`; also the `webhook-id` header, the same for every attempt and replay of this event. */
  id: string;
  type: WebhookEventType;
  version: typeof EVENT_VERSION;
  /** When the change happened (ISO 8601), not when this attempt was made. */
  createdAt: string;
  /** `null` for `ping`. */
  conversationId: string | null;
  /** The message's `seq` for message events, the conversation's last `seq` otherwise (0 when none). */
  seq: number;
  data: {
    conversation?: Conversation;
    message?: Message;
    /** For `participant.added` / `participant.removed`. */
    participant?: Participant;
    sessionId?: string;
    /** For `*.updated`: the names of the fields that changed, when known. */
    changes?: string[];
    /** For `ping`: the endpoint being tested. */
    webhookId?: string;
    /** For `contact.*`: the contact (only its `id` for `contact.deleted`), and the change. */
    contact?: unknown;
    otherContactId?: string;
    by?: string;
    reason?: string | null;
    conversationIds?: string[];
  };
}

/** Maps a domain event to the public schema, with a fresh event id. */
export function toWebhookEvent(event: DomainEvent): WebhookEvent {
  const data: WebhookEvent['data'] = {};
  if (event.conversation) data.conversation = event.conversation;
  if (event.message) data.message = event.message;
  if (event.participant) data.participant = event.participant;
  if (event.sessionId) data.sessionId = event.sessionId;
  if (event.changes) data.changes = event.changes;
  const isContact = event.type.startsWith('contact.');
  if (isContact) {
    data.contact = event.contact;
    if (event.otherContactId) data.otherContactId = event.otherContactId;
    if (event.by !== undefined) data.by = event.by;
    if (event.reason !== undefined) data.reason = event.reason;
    if (event.conversationIds) data.conversationIds = event.conversationIds;
  } else if (event.type === 'conversation.deleted' && event.reason) {
    // Erased by retention (SPEC §12): no conversation body, as the erased content is gone.
    data.reason = event.reason;
  }
  return {
    id: newId('evt'),
    type: event.type,
    version: EVENT_VERSION,
    createdAt: event.at,
    // A contact event is no conversation's: its lane is the contact (see WebhookService).
    conversationId: isContact ? null : event.conversationId,
    seq: event.seq,
    data,
  };
}

/** The event `POST /v1/webhooks/:id/test` sends. */
export function pingEvent(webhookId: string, now = new Date()): WebhookEvent {
  return {
    id: newId('evt'),
    type: 'ping',
    version: EVENT_VERSION,
    createdAt: now.toISOString(),
    conversationId: null,
    seq: 0,
    data: { webhookId },
  };
}
