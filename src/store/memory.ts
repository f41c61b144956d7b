/**
 * @module The embedded backend: everything in this process's memory, for a single gateway instance
 * with no Redis (SPEC §1). Every operation runs synchronously to completion before its promise
 * settles, which makes each one atomic without locks. Records are copied on the way in and out, so
 * callers never share state with the store.
 */

import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { GatewayError, QueueFullError } from '../core/errors.js';
import { newId } from '../core/ids.js';
import type { ChannelName, Conversation, DeliveryStatus, Message, Processing, Route } from '../core/model.js';
import type {
  AcceptInput,
  AcceptResult,
  Bus,
  Claim,
  CompleteResult,
  ContinueWith,
  ConversationPatch,
  ConversationQuery,
  DeliveryUpdateOptions,
  DeliveryUpdateResult,
  KeyValue,
  MessagePatch,
  MessageQuery,
  NewConversation,
  NewMessage,
  Page,
  ProcessingOutcome,
  Store,
} from '../core/store.js';
import {
  applyConversationPatch,
  applyDeliveryUpdate,
  applyMessagePatch,
  conversationCursor,
  conversationMatches,
  draftMessage,
  isUnfinished,
  type MessageDraft,
  messageCursor,
  messageMatches,
  newConversation,
  parseConversationCursor,
  parseMessageCursor,
  routesOf,
  toPage,
  withRoute,
} from './shared.js';

/** How often expired dedupe and kv entries are swept; lookups ignore expired entries regardless. */
const SWEEP_INTERVAL_MS = 60_000;
/** Doorbell rings remembered while no worker waits, like the Redis doorbell list's cap. */
const MAX_RINGS = 128;

export interface MemoryStoreOptions {
  /** Accepted, not yet completed messages beyond which accept throws QueueFullError. */
  maxPending: number;
  /** The Retry-After the QueueFullError carries. */
  retryAfterS: number;
  logger?: Logger;
}

interface ConversationState {
  conversation: Conversation;
  /** The last seq handed out; never goes back, so deletes leave other seqs alone. */
  seq: number;
  messages: Map<string, Message>;
  /** Messages in seq order (appends are in seq order because operations do not interleave). */
  ordered: Message[];
  /** Pending message ids in seq order; the head is the one a claim leases. */
  queue: string[];
  /** When the conversation is claimable (ms): when work arrived, or its lease expiry. */
  readyAt: number;
  lease: string | null;
  deliveries: Map<string, number>;
  replies: Map<string, string[]>;
  sent: Set<string>;
  /** Unfinished messages someone waits for (AcceptInput.notify). */
  notify: Set<string>;
  dedupe: Map<string, { messageId: string; expiresAt: number }>;
}

function binarySearchSeq(list: Message[], seq: number): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (list[mid]!.seq < seq) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** An in-process key/value map honouring TTLs. */
export class MemoryKeyValue implements KeyValue {
  readonly #entries = new Map<string, { value: string; expiresAt: number }>();

  #live(key: string): string | null {
    const e = this.#entries.get(key);
    if (!e) return null;
    if (e.expiresAt <= Date.now()) {
      this.#entries.delete(key);
      return null;
    }
    return e.value;
  }

  async get(key: string): Promise<string | null> {
    return this.#live(key);
  }

  async set(key: string, value: string, ttlS?: number): Promise<void> {
    this.#entries.set(key, {
      value,
      expiresAt: ttlS === undefined ? Number.POSITIVE_INFINITY : Date.now() + ttlS * 1000,
    });
  }

  async setIfAbsent(key: string, value: string, ttlS?: number): Promise<boolean> {
    if (this.#live(key) !== null) return false;
    await this.set(key, value, ttlS);
    return true;
  }

  async delete(key: string): Promise<void> {
    this.#entries.delete(key);
  }

  /** Drops every entry whose key or value `match` says to (erasure, SPEC §9); returns how many. */
  forget(match: (key: string, value: string) => boolean): number {
    let n = 0;
    for (const [key, e] of this.#entries)
      if (match(key, e.value)) {
        this.#entries.delete(key);
        n++;
      }
    return n;
  }

  /** Drops expired entries. */
  sweep(now: number): void {
    for (const [key, e] of this.#entries) if (e.expiresAt <= now) this.#entries.delete(key);
  }
}

/** In-process fan-out; handlers run on a later microtask, as they would after a Redis round trip. */
export class MemoryBus implements Bus {
  readonly #emitter = new EventEmitter().setMaxListeners(0);
  readonly #logger: Logger | undefined;

  constructor(logger?: Logger) {
    this.#logger = logger;
  }

  async publish(topic: string, payload: string): Promise<void> {
    for (const listener of this.#emitter.listeners(topic)) {
      queueMicrotask(() => {
        try {
          (listener as (p: string) => void)(payload);
        } catch (err) {
          this.#logger?.error({ err, topic }, 'bus handler failed');
        }
      });
    }
  }

  async subscribe(topic: string, handler: (payload: string) => void): Promise<() => Promise<void>> {
    // Wrapped so the same handler subscribed twice is two subscriptions, as with Redis.
    const listener = (payload: string) => handler(payload);
    this.#emitter.on(topic, listener);
    return async () => {
      this.#emitter.off(topic, listener);
    };
  }
}

/** The embedded {@link Store}. */
export class MemoryStore implements Store {
  readonly kind = 'embedded' as const;
  readonly kv: MemoryKeyValue;
  readonly bus: MemoryBus;

  readonly #maxPending: number;
  readonly #retryAfterS: number;
  readonly #conversations = new Map<string, ConversationState>();
  /** Conversation ids in id order (ids are time-sortable, so creation order). */
  readonly #order: string[] = [];
  readonly #refs = new Map<string, string>();
  /** Conversations with pending messages. */
  readonly #scheduled = new Set<string>();
  #pending = 0;
  readonly #waiters = new Set<() => void>();
  #rings = 0;
  #closed = false;
  readonly #sweeper: NodeJS.Timeout;

  constructor(options: MemoryStoreOptions) {
    this.#maxPending = options.maxPending;
    this.#retryAfterS = options.retryAfterS;
    this.kv = new MemoryKeyValue();
    this.bus = new MemoryBus(options.logger);
    this.#sweeper = setInterval(() => this.#sweep(), SWEEP_INTERVAL_MS).unref();
  }

  // --- conversations -----------------------------------------------------------------------------

  async createConversation(input: NewConversation): Promise<Conversation> {
    const c = this.#create(newId('conv'), input);
    // An explicit channelRef becomes resolvable, unless another conversation already owns it.
    if (input.channelRef !== undefined) {
      const ref = refKey(input.channel, input.channelRef);
      if (!this.#refs.has(ref)) this.#refs.set(ref, c.id);
    }
    return structuredClone(c);
  }

  async resolveConversation(
    input: NewConversation & { channelRef: string },
  ): Promise<{ conversation: Conversation; created: boolean }> {
    const ref = refKey(input.channel, input.channelRef);
    const id = this.#refs.get(ref);
    const existing = id === undefined ? undefined : this.#conversations.get(id);
    if (existing) return { conversation: structuredClone(existing.conversation), created: false };
    const c = this.#create(newId('conv'), input);
    this.#refs.set(ref, c.id);
    return { conversation: structuredClone(c), created: true };
  }

  async getConversation(id: string): Promise<Conversation | null> {
    const s = this.#conversations.get(id);
    return s ? structuredClone(s.conversation) : null;
  }

  async findConversation(channel: ChannelName, channelRef: string): Promise<Conversation | null> {
    const id = this.#refs.get(refKey(channel, channelRef));
    const s = id === undefined ? undefined : this.#conversations.get(id);
    return s ? structuredClone(s.conversation) : null;
  }

  async addRoute(
    conversationId: string,
    route: Route,
  ): Promise<{ conversation: Conversation; added: boolean } | null> {
    const s = this.#conversations.get(conversationId);
    if (!s) return null;
    const ref = refKey(route.channel, route.channelRef);
    const owner = this.#refs.get(ref);
    const taken = owner === undefined ? undefined : this.#conversations.get(owner);
    if (taken && owner !== conversationId)
      return { conversation: structuredClone(taken.conversation), added: false };
    this.#refs.set(ref, conversationId);
    const next = withRoute(s.conversation, structuredClone(route));
    if (next !== s.conversation) s.conversation = { ...next, updatedAt: new Date().toISOString() };
    return { conversation: structuredClone(s.conversation), added: true };
  }

  async listConversations(query: ConversationQuery): Promise<Page<Conversation>> {
    const after = query.cursor === undefined ? undefined : parseConversationCursor(query.cursor);
    const asc = query.order === 'asc';
    const ids = this.#order;
    let i: number;
    if (after === undefined) i = asc ? 0 : ids.length - 1;
    else {
      const at = lowerBound(ids, after);
      i = asc ? (ids[at] === after ? at + 1 : at) : at - 1;
    }
    const out: Conversation[] = [];
    for (; i >= 0 && i < ids.length && out.length <= query.take; i += asc ? 1 : -1) {
      const c = this.#conversations.get(ids[i]!)!.conversation;
      if (conversationMatches(c, query)) out.push(structuredClone(c));
    }
    return toPage(out, query.take, (c) => conversationCursor(c.id));
  }

  async updateConversation(id: string, patch: ConversationPatch): Promise<Conversation | null> {
    const s = this.#conversations.get(id);
    if (!s) return null;
    s.conversation = applyConversationPatch(s.conversation, structuredClone(patch), new Date().toISOString());
    return structuredClone(s.conversation);
  }

  /**
   * One synchronous step over a conversation and its last seq: `change` returns the conversation as
   * it is to be stored, or null to leave it as it is. The embedded twin of the handoff room's Lua
   * transitions (src/handoff/), which need the seq and the record read and written with no accept in
   * between. Returns the conversation as stored afterwards, null when there is none.
   */
  transformConversation(
    id: string,
    change: (current: Conversation, lastSeq: number) => Conversation | null,
  ): Conversation | null {
    const s = this.#conversations.get(id);
    if (!s) return null;
    const next = change(structuredClone(s.conversation), s.seq);
    if (next) s.conversation = structuredClone(next);
    return structuredClone(s.conversation);
  }

  async deleteConversation(id: string, options: { ifEmpty?: boolean } = {}): Promise<boolean> {
    const s = this.#conversations.get(id);
    if (!s) return false;
    if (options.ifEmpty && s.seq > 0) return false;
    for (const route of routesOf(s.conversation)) {
      const ref = refKey(route.channel, route.channelRef);
      if (this.#refs.get(ref) === id) this.#refs.delete(ref);
    }
    this.#conversations.delete(id);
    this.#order.splice(lowerBound(this.#order, id), 1);
    this.#pending -= s.queue.length;
    this.#scheduled.delete(id);
    return true;
  }

  // --- messages ----------------------------------------------------------------------------------

  async appendMessage(conversationId: string, input: NewMessage): Promise<Message | null> {
    const s = this.#conversations.get(conversationId);
    if (!s) return null;
    const at = new Date().toISOString();
    return this.#view(s, this.#insert(s, [draftMessage(conversationId, structuredClone(input), at)], at)[0]!);
  }

  async getMessage(conversationId: string, messageId: string): Promise<Message | null> {
    const s = this.#conversations.get(conversationId);
    const m = s?.messages.get(messageId);
    return s && m ? this.#view(s, m) : null;
  }

  async listMessages(conversationId: string, query: MessageQuery): Promise<Page<Message>> {
    const after = query.cursor === undefined ? undefined : parseMessageCursor(query.cursor);
    const s = this.#conversations.get(conversationId);
    if (!s) return { items: [], cursor: null };
    const asc = query.order === 'asc';
    const list = s.ordered;
    let i: number;
    if (after === undefined) i = asc ? 0 : list.length - 1;
    else i = asc ? binarySearchSeq(list, after + 1) : binarySearchSeq(list, after) - 1;
    const out: Message[] = [];
    for (; i >= 0 && i < list.length && out.length <= query.take; i += asc ? 1 : -1) {
      const m = list[i]!;
      if (messageMatches(m, query)) out.push(this.#view(s, m));
    }
    return toPage(out, query.take, (m) => messageCursor(m.seq));
  }

  async messagesAfter(conversationId: string, afterSeq: number, limit: number): Promise<Message[]> {
    const s = this.#conversations.get(conversationId);
    if (!s) return [];
    const from = binarySearchSeq(s.ordered, afterSeq + 1);
    return s.ordered.slice(from, from + limit).map((m) => this.#view(s, m));
  }

  async updateMessage(
    conversationId: string,
    messageId: string,
    patch: MessagePatch,
  ): Promise<Message | null> {
    const s = this.#conversations.get(conversationId);
    const m = s?.messages.get(messageId);
    if (!s || !m) return null;
    return this.#view(
      s,
      this.#replace(s, applyMessagePatch(m, structuredClone(patch), new Date().toISOString())),
    );
  }

  async deleteMessage(conversationId: string, messageId: string): Promise<boolean> {
    const s = this.#conversations.get(conversationId);
    const m = s?.messages.get(messageId);
    if (!s || !m) return false;
    s.messages.delete(messageId);
    s.ordered.splice(binarySearchSeq(s.ordered, m.seq), 1);
    s.deliveries.delete(messageId);
    s.replies.delete(messageId);
    s.sent.delete(messageId);
    s.notify.delete(messageId);
    return true;
  }

  async updateDelivery(
    conversationId: string,
    messageId: string,
    status: DeliveryStatus,
    error?: { code?: string; message: string },
    options?: DeliveryUpdateOptions,
  ): Promise<DeliveryUpdateResult | null> {
    const s = this.#conversations.get(conversationId);
    const m = s?.messages.get(messageId);
    if (!s || !m) return null;
    const step = applyDeliveryUpdate(
      m,
      status,
      error && structuredClone(error),
      options?.externalId,
      new Date().toISOString(),
    );
    if (!step) return { message: this.#view(s, m), changed: false };
    return { message: this.#view(s, this.#replace(s, step.message)), changed: step.changed };
  }

  async recordReplies(conversationId: string, messageId: string, replies: NewMessage[]): Promise<Message[]> {
    const s = this.#conversations.get(conversationId);
    return s ? this.#recordReplies(s, messageId, replies).replies : [];
  }

  async claimSend(conversationId: string, messageId: string): Promise<boolean> {
    const s = this.#conversations.get(conversationId);
    if (!s || s.sent.has(messageId)) return false;
    s.sent.add(messageId);
    return true;
  }

  // --- ingest and queue --------------------------------------------------------------------------

  async accept(input: AcceptInput): Promise<AcceptResult> {
    const s = this.#conversations.get(input.conversationId);
    if (!s) throw new GatewayError('GW_ERR_NOT_FOUND', 'Conversation not found');
    const now = Date.now();
    const known = s.dedupe.get(input.dedupeKey);
    const original = known && known.expiresAt > now ? s.messages.get(known.messageId) : undefined;
    // A dedupe key whose message was deleted no longer counts.
    if (original) {
      if (input.notify && isUnfinished(original.processing)) s.notify.add(original.id);
      return { message: this.#view(s, original), duplicate: true, sessionStarted: false };
    }
    const queued = !input.skipQueue;
    if (queued && this.#pending >= this.#maxPending) throw new QueueFullError(this.#retryAfterS);

    const at = new Date(now).toISOString();
    const c = s.conversation;
    let endedSessionId: string | undefined;
    if (c.lastMessageAt !== null && now - Date.parse(c.lastMessageAt) > input.sessionIdleS * 1000) {
      endedSessionId = c.sessionId;
      c.sessionId = newId('sess');
      c.sessionStartedAt = at;
      c.sessionState = {};
    }
    const draft = draftMessage(
      input.conversationId,
      { ...structuredClone(input.message), direction: 'inbound' },
      at,
    );
    const [m] = this.#insert(s, [draft], at, queued ? { state: 'queued', attempts: 0, at } : undefined);
    s.dedupe.set(input.dedupeKey, { messageId: m!.id, expiresAt: now + input.dedupeTtlS * 1000 });
    if (queued) {
      s.queue.push(m!.id);
      if (input.notify) s.notify.add(m!.id);
      this.#pending++;
      if (s.queue.length === 1) {
        s.readyAt = now;
        this.#scheduled.add(c.id);
        this.#ring();
      }
    }
    return {
      message: this.#view(s, m!),
      duplicate: false,
      sessionStarted: endedSessionId !== undefined,
      ...(endedSessionId === undefined ? {} : { endedSessionId }),
    };
  }

  async claim(owner: string, max: number, leaseMs: number): Promise<Claim[]> {
    const now = Date.now();
    const ready = [...this.#scheduled]
      .map((id) => this.#conversations.get(id)!)
      .filter((s) => s.readyAt <= now)
      .sort((a, b) => a.readyAt - b.readyAt);
    const claims: Claim[] = [];
    for (const s of ready) {
      if (claims.length >= max) break;
      const claim = this.#lease(s, owner, leaseMs, now);
      if (claim) claims.push(claim);
    }
    return claims;
  }

  async heartbeat(claim: Claim, leaseMs: number): Promise<boolean> {
    const s = this.#owned(claim);
    if (!s) return false;
    s.readyAt = Date.now() + leaseMs;
    return true;
  }

  async complete(
    claim: Claim,
    outcome?: ProcessingOutcome,
    next?: ContinueWith,
    replies?: NewMessage[],
  ): Promise<CompleteResult> {
    const s = this.#owned(claim);
    if (!s) return { completed: false, notify: false, next: null };
    const now = Date.now();
    const recorded = replies && this.#recordReplies(s, claim.message.id, replies);
    const m = s.messages.get(claim.message.id);
    if (m && outcome) {
      this.#replace(s, {
        ...m,
        processing: { ...structuredClone(outcome), at: new Date(now).toISOString() },
      });
    }
    const notify = s.notify.delete(claim.message.id);
    s.lease = null;
    if (s.queue[0] === claim.message.id) {
      s.queue.shift();
      this.#pending--;
    }
    const continued = next ? this.#lease(s, next.owner, next.leaseMs, now) : null;
    if (!continued && s.queue.length > 0) {
      s.readyAt = now;
      this.#ring();
    }
    const result: CompleteResult = { completed: true, notify, next: continued };
    return recorded ? { ...result, replies: recorded.replies, repliesRecorded: recorded.recorded } : result;
  }

  /** Records the replies to `messageId` unless some were recorded before (then those are returned). */
  #recordReplies(
    s: ConversationState,
    messageId: string,
    replies: NewMessage[],
  ): { replies: Message[]; recorded: boolean } {
    const prior = s.replies.get(messageId);
    if (prior) {
      return {
        replies: prior.flatMap((id) => (s.messages.has(id) ? [this.#view(s, s.messages.get(id)!)] : [])),
        recorded: false,
      };
    }
    const at = new Date().toISOString();
    const drafts = replies.map((r) =>
      draftMessage(s.conversation.id, { ...structuredClone(r), replyTo: r.replyTo ?? messageId }, at),
    );
    const stored = this.#insert(s, drafts, at);
    s.replies.set(
      messageId,
      stored.map((m) => m.id),
    );
    return { replies: stored.map((m) => this.#view(s, m)), recorded: true };
  }

  async release(claim: Claim): Promise<void> {
    const s = this.#owned(claim);
    if (!s) return;
    s.lease = null;
    const m = s.messages.get(claim.message.id);
    if (m?.processing) {
      this.#replace(s, {
        ...m,
        processing: { ...m.processing, state: 'queued', at: new Date().toISOString() },
      });
    }
    s.readyAt = Date.now();
    this.#ring();
  }

  waitForWork(timeoutMs: number, signal?: AbortSignal): Promise<void> {
    if (this.#rings > 0) {
      this.#rings--;
      return Promise.resolve();
    }
    if (this.#closed || signal?.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        this.#waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, timeoutMs);
      signal?.addEventListener('abort', done, { once: true });
      this.#waiters.add(done);
    });
  }

  async pendingCount(): Promise<number> {
    return this.#pending;
  }

  // --- lifecycle ---------------------------------------------------------------------------------

  async ping(): Promise<boolean> {
    return true;
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#sweeper);
    for (const done of [...this.#waiters]) done();
  }

  // --- internals ---------------------------------------------------------------------------------

  #create(id: string, input: NewConversation): Conversation {
    const c = newConversation(id, structuredClone(input), new Date().toISOString(), newId('sess'));
    this.#conversations.set(id, {
      conversation: c,
      seq: 0,
      messages: new Map(),
      ordered: [],
      queue: [],
      readyAt: 0,
      lease: null,
      deliveries: new Map(),
      replies: new Map(),
      sent: new Set(),
      notify: new Set(),
      dedupe: new Map(),
    });
    this.#order.splice(lowerBound(this.#order, id), 0, id);
    return c;
  }

  /** Assigns seqs and the current session, stores, and moves `lastMessageAt`. */
  #insert(s: ConversationState, drafts: MessageDraft[], at: string, processing?: Processing): Message[] {
    const stored = drafts.map((d) => {
      const m: Message = {
        ...d,
        seq: ++s.seq,
        sessionId: s.conversation.sessionId,
        ...(processing ? { processing } : {}),
      };
      s.messages.set(m.id, m);
      s.ordered.push(m);
      return m;
    });
    if (stored.length > 0) {
      s.conversation.lastMessageAt = at;
      s.conversation.updatedAt = at;
    }
    return stored;
  }

  /** Swaps a stored message for its new version (same id and seq). */
  #replace(s: ConversationState, m: Message): Message {
    s.messages.set(m.id, m);
    s.ordered[binarySearchSeq(s.ordered, m.seq)] = m;
    return m;
  }

  /** A copy of the message with the reply ids recorded for it. */
  #view(s: ConversationState, m: Message): Message {
    const out = structuredClone(m);
    const replyIds = s.replies.get(m.id);
    if (out.processing && replyIds) out.processing.replyIds = [...replyIds];
    return out;
  }

  /**
   * Leases the conversation's head message (dropping queue entries of deleted messages on the way), or
   * takes the conversation off the schedule when its queue is empty.
   */
  #lease(s: ConversationState, owner: string, leaseMs: number, now: number): Claim | null {
    while (s.queue.length > 0 && !s.messages.has(s.queue[0]!)) {
      s.queue.shift();
      this.#pending--;
    }
    const head = s.queue[0];
    if (head === undefined) {
      this.#scheduled.delete(s.conversation.id);
      s.lease = null;
      return null;
    }
    const token = `${owner}:${randomUUID()}`;
    s.lease = token;
    s.readyAt = now + leaseMs;
    const deliveries = (s.deliveries.get(head) ?? 0) + 1;
    s.deliveries.set(head, deliveries);
    const m = s.messages.get(head)!;
    const attempts = (m.processing?.attempts ?? 0) + 1;
    const at = new Date(now).toISOString();
    this.#replace(s, { ...m, processing: { ...m.processing, state: 'processing', attempts, at } });
    return {
      conversationId: s.conversation.id,
      conversation: structuredClone(s.conversation),
      message: this.#view(s, s.messages.get(head)!),
      token,
      deliveries,
    };
  }

  #owned(claim: Claim): ConversationState | undefined {
    const s = this.#conversations.get(claim.conversationId);
    return s && s.lease === claim.token ? s : undefined;
  }

  #ring(): void {
    const [first] = this.#waiters;
    if (first) first();
    else this.#rings = Math.min(this.#rings + 1, MAX_RINGS);
  }

  #sweep(): void {
    const now = Date.now();
    this.kv.sweep(now);
    for (const s of this.#conversations.values()) {
      for (const [key, d] of s.dedupe) if (d.expiresAt <= now) s.dedupe.delete(key);
    }
  }
}

function refKey(channel: string, channelRef: string): string {
  return `${channel}\u0000${channelRef}`;
}

/** Index of the first element >= value in a sorted string array. */
function lowerBound(list: string[], value: string): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (list[mid]! < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
