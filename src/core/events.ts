/**
 * @module Domain events. The core emits one event after each successful change; sinks (metrics,
 * outbound webhooks to CRMs) subscribe. Emitting never throws into the caller.
 */

import type { Contact } from '../contacts/model.js';
import { extend } from './extend.js';
import type { Conversation, Message, Participant } from './model.js';

export const EVENT_TYPES = [
  'conversation.created',
  'conversation.updated',
  'conversation.deleted',
  'conversation.handoff_requested',
  'conversation.handoff_assigned',
  'conversation.handoff_released',
  'participant.added',
  'participant.removed',
  'message.created',
  'message.updated',
  'message.deleted',
  'message.delivery',
  'session.started',
  'session.ended',
  'contact.created',
  'contact.updated',
  'contact.merged',
  'contact.unmerged',
  'contact.deleted',
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
  /** For `participant.*`: the participant added or removed. */
  participant?: Participant;
  sessionId?: string;
  /** For updates: the fields that changed. */
  changes?: string[];
  /**
   * For `contact.*` events (whose `conversationId` is the contact id: their ordering lane): the
   * contact as it is after the change; for `contact.deleted` only its id.
   */
  contact?: Contact | { id: string };
  /** For `contact.merged`: the contact merged in; for `contact.unmerged`: the contact it left. */
  otherContactId?: string;
  /** For `contact.merged` / `contact.unmerged`: who did it and why. */
  by?: string;
  reason?: string | null;
  /** For `contact.merged` / `contact.unmerged`: the conversations that moved. */
  conversationIds?: string[];
}

export type EventListener = (event: DomainEvent) => void | Promise<void>;

export type EmitInput = Omit<DomainEvent, 'at'> & { at?: string };

/** A conversation's events held back for one caller; see {@link EventHub.hold}. */
export interface EventHold {
  /** Emits as the holder: not held back by this hold or any other. */
  emit(event: EmitInput): Promise<void>;
  /** Lets the events held back by this hold go (idempotent). */
  release(): void;
}

export class EventHub {
  readonly #listeners = new Set<EventListener>();
  readonly #onError: (err: unknown, event: DomainEvent) => void;
  /** Per conversation, the holds in force: each settles when released. */
  readonly #holds = new Map<string, Set<Promise<void>>>();

  constructor(onError: (err: unknown, event: DomainEvent) => void) {
    this.#onError = onError;
  }

  on(listener: EventListener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * The events of a conversation just created, by a channel or the API: `conversation.created`, then
   * `session.started` for the session it was created with (later sessions are announced by the accept
   * that starts them). Only the caller whose store call created the conversation announces it, so a
   * message delivered to several instances at once announces it once.
   */
  async announceConversation(conversation: Conversation): Promise<void> {
    await this.emit({ type: 'conversation.created', conversationId: conversation.id, seq: 0, conversation });
    await this.emit({
      type: 'session.started',
      conversationId: conversation.id,
      seq: 0,
      sessionId: conversation.sessionId,
    });
  }

  /**
   * Holds back, until released, the events other callers of this process emit for the conversation.
   * Ingest holds it from before a message is accepted until its own events for it are out: the engine
   * may take the message at once, and the replies it announces must follow the message they answer
   * (webhook lanes deliver in emit order). An emit waits only for the holds in force when it is called,
   * so a stream of new holds cannot keep it waiting.
   */
  hold(conversationId: string): EventHold {
    let release!: () => void;
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    const holds = this.#holds.get(conversationId) ?? new Set();
    holds.add(released);
    this.#holds.set(conversationId, holds);
    return {
      emit: (event) => this.#run(event),
      release: () => {
        release();
        holds.delete(released);
        if (holds.size === 0 && this.#holds.get(conversationId) === holds) this.#holds.delete(conversationId);
      },
    };
  }

  /** Runs every listener; awaits async ones so a durable sink can finish before the caller answers. */
  async emit(event: EmitInput): Promise<void> {
    const holds = this.#holds.get(event.conversationId);
    if (holds) await Promise.all([...holds]);
    await this.#run(event);
  }

  async #run(event: EmitInput): Promise<void> {
    const full: DomainEvent = extend(event, { at: event.at ?? new Date().toISOString() });
    for (const listener of this.#listeners) {
      try {
        // A listener with nothing to wait for (most, for most events) costs no promise turn.
        const pending = listener(full);
        if (pending) await pending;
      } catch (err) {
        this.#onError(err, full);
      }
    }
  }
}
