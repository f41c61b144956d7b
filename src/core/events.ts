/**
 * @module Domain events. The core emits one event after each successful change; sinks (metrics,
 * outbound webhooks to CRMs) subscribe. Emitting never throws into the caller.
 */
import type { Conversation, Message } from './model.js';

export const EVENT_TYPES = [
  'conversation.created',
  'conversation.updated',
  'conversation.deleted',
  'message.created',
  'message.updated',
  'message.deleted',
  'message.delivery',
  'session.started',
  'session.ended',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

export interface DomainEvent {
  type: EventType;
  conversationId: string;
  /** The message's seq for message events; the conversation's last seq otherwise (0 when none). */
  seq: number;
  at: string;
  conversation?: Conversation;
  message?: Message;
  sessionId?: string;
  /** For updates: the fields that changed. */
  changes?: string[];
}

export type EventListener = (event: DomainEvent) => void | Promise<void>;

export class EventHub {
  readonly #listeners = new Set<EventListener>();
  readonly #onError: (err: unknown, event: DomainEvent) => void;

  constructor(onError: (err: unknown, event: DomainEvent) => void) {
    this.#onError = onError;
  }

  on(listener: EventListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Runs every listener; awaits async ones so a durable sink can finish before the caller answers. */
  async emit(event: Omit<DomainEvent, 'at'> & { at?: string }): Promise<void> {
    const full: DomainEvent = { ...event, at: event.at ?? new Date().toISOString() };
    for (const listener of this.#listeners) {
      try {
        await listener(full);
      } catch (err) {
        this.#onError(err, full);
      }
    }
  }
}
