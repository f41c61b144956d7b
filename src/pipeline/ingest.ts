/**
 * @module The accept path shared by every channel: resolve the conversation, then dedupe + store +
 * enqueue in one atomic store call (SPEC §4.1–4.2). The provider is answered only after this resolves.
 */

import type { AppConfig } from '../../config/schema.js';
import type { ContactHooks } from '../contacts/hooks.js';
import type { AcceptOptions, InboundMessage, Ingest, IngestResult, SenderIdentity } from '../core/channel.js';
import { detectEntities } from '../core/entities.js';
import { GatewayError } from '../core/errors.js';
import type { EventHub } from '../core/events.js';
import { extend } from '../core/extend.js';
import { LruCache } from '../core/lru.js';
import type { ChannelName, Conversation, Meta, Participant, Route } from '../core/model.js';
import type { AcceptResult, NewMessage, Store } from '../core/store.js';
import type { Lifecycle } from '../deps.js';
import type { Metrics } from '../metrics.js';
import type { ParticipantService } from '../participants/service.js';
import { inSpan, traceparentOf, tracingOn } from '../tracing/index.js';

/** Channel refs whose conversation this process remembers (about 2 MB at most). */
const REF_CACHE_SIZE = 10_000;

interface KnownRef {
  conversationId: string;
  /** Participant ids the conversation is known to have (so the upsert can be skipped). */
  participants: Set<string>;
}

export class IngestService implements Ingest {
  readonly #store: Store;
  /**
   * Channel ref to conversation, most recently used last. A conversation's ref never points elsewhere
   * while the conversation exists, so the only stale entry is one whose conversation was deleted (by
   * any process): the accept then fails with not found, and the entry is dropped and resolved again.
   */
  readonly #refs = new LruCache<string, KnownRef>(REF_CACHE_SIZE);
  readonly #config: AppConfig;
  readonly #events: EventHub;
  readonly #metrics: Metrics;
  readonly #counters = {
    accepted: new Map<string, { inc(): void }>(),
    duplicates: new Map<string, { inc(): void }>(),
  };
  readonly #lifecycle: Lifecycle;
  readonly #participants: Pick<ParticipantService, 'join'> | undefined;
  /** Gives senders their contact (SPEC §9); absent in tests that build ingest alone. */
  readonly #contacts: ContactHooks | undefined;

  constructor(deps: {
    store: Store;
    config: AppConfig;
    events: EventHub;
    metrics: Metrics;
    lifecycle: Lifecycle;
    /** Records the joins of new people (SPEC §8); without it they are only upserted. */
    participants?: Pick<ParticipantService, 'join'>;
    contacts?: ContactHooks;
  }) {
    this.#participants = deps.participants;
    this.#store = deps.store;
    this.#config = deps.config;
    this.#events = deps.events;
    this.#metrics = deps.metrics;
    this.#lifecycle = deps.lifecycle;
    this.#contacts = deps.contacts;
  }

  contactOf(channel: ChannelName, from: Participant, identity?: SenderIdentity): Promise<Participant> {
    return this.#contacts ? this.#contacts.contactOf(channel, from, identity) : Promise.resolve(from);
  }

  attachContact(
    conversation: Conversation,
    channel: ChannelName,
    from: Participant,
    identity?: SenderIdentity,
  ): Promise<Conversation> {
    return this.#contacts
      ? this.#contacts.attachContact(conversation, channel, from, identity)
      : Promise.resolve(conversation);
  }

  async accept(inbound: InboundMessage): Promise<IngestResult> {
    this.#assertOpen();
    const key = `${inbound.channel}\n${inbound.channelRef}`;
    const known = this.#refs.get(key);
    const people = [inbound.from, ...(inbound.participants ?? [])];
    if (known && people.every((p) => known.participants.has(p.id))) {
      // Most messages come from a customer already in a known conversation: one store call.
      try {
        return await this.#acceptInbound(known.conversationId, inbound);
      } catch (err) {
        if (!(err instanceof GatewayError && err.code === 'GW_ERR_NOT_FOUND')) throw err;
        this.#refs.delete(key);
      }
    }
    // Contact scope may remove a conversation made in a race just after this process resolved it
    // (see resolveConversation): the thread is then resolved again. Channel scope never does.
    for (let round = 0; ; round++) {
      try {
        return await this.#resolveAndAccept(key, inbound);
      } catch (err) {
        const gone = err instanceof GatewayError && err.code === 'GW_ERR_NOT_FOUND';
        if (!gone || round >= 2 || this.#config.CONVERSATION_SCOPE !== 'contact') throw err;
        this.#refs.delete(key);
      }
    }
  }

  async #resolveAndAccept(key: string, inbound: InboundMessage): Promise<IngestResult> {
    const from = await this.contactOf(inbound.channel, inbound.from, inbound.identity);
    const { conversation, created } = await this.resolveConversation({
      channel: inbound.channel,
      channelRef: inbound.channelRef,
      from,
      ...(inbound.identity ? { identity: inbound.identity } : {}),
      ...(inbound.conversationMeta ? { meta: inbound.conversationMeta } : {}),
    });
    let conv = conversation;
    if (created) await this.#events.announceConversation(conv);
    // Everyone new on the message joins (the author's join is its conversation's creation).
    const joining = [from, ...(inbound.participants ?? [])].filter((p) => !hasParticipant(conv, p));
    if (joining.length > 0) conv = (await this.#join(conv.id, joining)) ?? conv;
    conv = await this.attachContact(conv, inbound.channel, from, inbound.identity);
    this.#refs.set(key, {
      conversationId: conv.id,
      participants: new Set(conv.participants.map((p) => p.id)),
    });
    return this.#acceptInbound(conv.id, inbound);
  }

  /**
   * The conversation of a channel thread, for a sender whose contact is known ({@link contactOf}).
   * In channel scope, the thread's own (get or create). In contact scope (SPEC §9), a thread that has
   * a conversation keeps it; a new one joins the contact's conversation as a further route, or starts
   * the contact's conversation when they have none.
   */
  async resolveConversation(input: {
    channel: ChannelName;
    channelRef: string;
    from: Participant;
    identity?: SenderIdentity;
    meta?: Meta;
  }): Promise<{ conversation: Conversation; created: boolean }> {
    const { channel, channelRef, meta } = input;
    let from = input.from;
    let contactId = from.contactId;
    if (this.#config.CONVERSATION_SCOPE !== 'contact' || !this.#contacts || !contactId)
      return this.#store.resolveConversation({ channel, channelRef, participants: [from], meta });
    const contacts = this.#contacts;
    const route: Route = { channel, channelRef, meta: meta ?? {} };
    // A few rounds cover a conversation deleted meanwhile and two first messages racing.
    for (let round = 0; round < 5; round++) {
      const existing = await this.#store.findConversation(channel, channelRef);
      if (existing) {
        await contacts.claimConversation(contactId, existing.id);
        // A route whose mapping was made but not recorded (a crash between the two) is completed.
        if (
          !existing.routes ||
          existing.routes.some((r) => r.channel === channel && r.channelRef === channelRef)
        )
          return { conversation: existing, created: false };
        const healed = await this.#store.addRoute(existing.id, route);
        if (healed) return { conversation: healed.conversation, created: false };
        continue;
      }
      const open = await contacts.conversationOf(contactId);
      if (open) {
        const joined = await this.#store.addRoute(open.id, route);
        if (joined) return { conversation: joined.conversation, created: false };
        continue;
      }
      const resolved = await this.#store.resolveConversation({
        channel,
        channelRef,
        participants: [from],
        meta,
        routes: [route],
      });
      const holder = await contacts.claimConversation(contactId, resolved.conversation.id);
      if (holder === resolved.conversation.id) return resolved;
      // A first message of theirs on another channel started their conversation at the same time
      // (this thread joins that one), or a merge removed the contact meanwhile (the sender is looked
      // up again and joins the survivor's). The one made here goes only while nothing was stored in
      // it: a message another process accepted into it meanwhile keeps it (and is never lost).
      const removed = await this.#store.deleteConversation(resolved.conversation.id, { ifEmpty: true });
      if (!removed && (await this.#store.getConversation(resolved.conversation.id)))
        return { conversation: resolved.conversation, created: resolved.created };
      if (holder === null) {
        from = await this.contactOf(channel, from, input.identity);
        contactId = from.contactId ?? contactId;
      }
    }
    throw new GatewayError('GW_ERR_CONFLICT', 'The conversation kept changing while being resolved; retry');
  }

  #acceptInbound(conversationId: string, inbound: InboundMessage): Promise<AcceptResult> {
    const { message } = inbound;
    return this.acceptInto(
      { id: conversationId },
      inbound.channel,
      inbound.dedupeKey,
      extend(message, {
        type: message.type ?? 'user',
        direction: 'inbound' as const,
        name: message.name ?? inbound.from.name,
        participantId: message.participantId ?? inbound.from.id,
      }),
      { skipQueue: inbound.skipBot === true, channelRef: inbound.channelRef },
    );
  }

  /**
   * Accepts a message into a known conversation (the API channel knows its conversation id). The
   * conversation's events are held (see `EventHub.hold`) until this message's own are out, so the
   * engine, which may take the message at once, cannot announce replies to it first.
   */
  acceptInto(
    conversation: Pick<Conversation, 'id'>,
    channel: ChannelName,
    dedupeKey: string,
    message: NewMessage,
    options: AcceptOptions = {},
  ): Promise<AcceptResult> {
    if (!tracingOn()) return this.#acceptInto(conversation, channel, dedupeKey, message, options);
    // SPEC §12: the accept's span is stored with the message, so the process that claims it (any
    // process) continues this trace.
    return inSpan(
      'accept',
      { attributes: { 'switchboard.channel': channel, 'switchboard.conversation.id': conversation.id } },
      async (span) => {
        const traced = span?.isRecording() ? extend(message, { traceparent: traceparentOf(span) }) : message;
        const result = await this.#acceptInto(conversation, channel, dedupeKey, traced, options);
        span?.setAttributes({
          'switchboard.dedupe': result.duplicate ? 'duplicate' : 'new',
          'switchboard.message.id': result.message.id,
        });
        return result;
      },
    );
  }

  async #acceptInto(
    conversation: Pick<Conversation, 'id'>,
    channel: ChannelName,
    dedupeKey: string,
    message: NewMessage,
    options: AcceptOptions,
  ): Promise<AcceptResult> {
    this.#assertOpen();
    const events = this.#events.hold(conversation.id);
    try {
      const result = await this.#store.accept({
        conversationId: conversation.id,
        dedupeKey: `${channel}:${dedupeKey}`,
        dedupeTtlS: this.#config.DEDUPE_TTL_S,
        sessionIdleS: this.#config.SESSION_IDLE_S,
        skipQueue: options.skipQueue === true,
        notify: options.notify === true,
        message: extend(message, {
          entities: message.entities ?? detectEntities(message.text),
          // Contact scope: each message keeps the channel thread it came by, which its replies leave by.
          ...(this.#config.CONVERSATION_SCOPE === 'contact' && options.channelRef !== undefined
            ? { channel, channelRef: options.channelRef }
            : {}),
        }),
      });
      if (result.duplicate) {
        this.#counter('duplicates', channel).inc();
        return result;
      }
      this.#counter('accepted', channel).inc();
      const { message: stored } = result;
      if (result.endedSessionId) {
        await events.emit({
          type: 'session.ended',
          conversationId: conversation.id,
          seq: stored.seq - 1,
          sessionId: result.endedSessionId,
        });
      }
      if (result.sessionStarted) {
        await events.emit({
          type: 'session.started',
          conversationId: conversation.id,
          seq: stored.seq,
          sessionId: stored.sessionId,
        });
      }
      await events.emit({
        type: 'message.created',
        conversationId: conversation.id,
        seq: stored.seq,
        message: stored,
      });
      return result;
    } finally {
      events.release();
    }
  }

  /** The channel's child of an accept counter, bound once: prom-client hashes a label set per call. */
  #counter(metric: 'accepted' | 'duplicates', channel: ChannelName): { inc(): void } {
    const children = this.#counters[metric];
    let child = children.get(channel);
    if (!child) {
      child = this.#metrics[metric].labels({ channel });
      children.set(channel, child);
    }
    return child;
  }

  #join(conversationId: string, people: Participant[]): Promise<Conversation | null> {
    if (this.#participants) return this.#participants.join(conversationId, people);
    return this.#store.updateConversation(conversationId, { participants: people });
  }

  #assertOpen(): void {
    if (this.#lifecycle.draining)
      throw new GatewayError('GW_ERR_SHUTTING_DOWN', 'The gateway is shutting down', { retryAfter: 1 });
  }
}

function hasParticipant(conversation: Conversation, p: Participant): boolean {
  return conversation.participants.some((q) => q.id === p.id && q.contactId === p.contactId);
}
