/**
 * @module The storage port. One interface, two implementations (embedded in-process and Redis), both
 * held to the same conformance suite in `test/contract/`. It stores conversations and messages and it
 * owns the per-conversation ordered queue, because accepting a message (dedupe + store + enqueue) must be
 * one atomic step (SPEC §4.1–4.2).
 */
import type {
  Attachment,
  ChannelName,
  Conversation,
  ConversationStatus,
  Delivery,
  DeliveryStatus,
  Direction,
  Entity,
  Message,
  MessageType,
  Meta,
  Participant,
  Processing,
  QuickReply,
  Route,
} from './model.js';

export interface Page<T> {
  items: T[];
  /** Opaque; `null` on the last page. */
  cursor: string | null;
}

export interface PageQuery {
  /** An opaque cursor from a previous page; a malformed one makes the store throw GW_ERR_INVALID_CURSOR. */
  cursor?: string;
  /** 1..200 (validated by the caller). */
  take: number;
  order: 'asc' | 'desc';
  /** Exact-match filters on top-level meta keys, compared as strings. */
  meta?: Record<string, string>;
}

export interface ConversationQuery extends PageQuery {
  channel?: ChannelName;
  status?: ConversationStatus;
}

export interface MessageQuery extends PageQuery {
  type?: MessageType;
}

export interface NewConversation {
  channel: ChannelName;
  /** Defaults to the conversation id for conversations with no channel behind them. */
  channelRef?: string;
  participants?: Participant[];
  meta?: Meta;
  status?: ConversationStatus;
  /** Contact scope: the conversation's routes (the first is its own channel thread). */
  routes?: Route[];
}

export interface ConversationPatch {
  status?: ConversationStatus;
  /** Merged into the existing meta (shallow); a key set to `null` is removed. */
  meta?: Meta;
  /** Upsert participants by id. */
  participants?: Participant[];
  /** Participant ids to remove (after the upsert). */
  removeParticipants?: string[];
  /** Replaces the session state of the current session. */
  sessionState?: Meta;
}

export interface NewMessage {
  type: MessageType;
  text: string;
  direction: Direction;
  /** Contact scope: the channel thread it came in by or goes out through. */
  channel?: ChannelName;
  channelRef?: string;
  name?: string;
  description?: string;
  meta?: Meta;
  entities?: Entity[];
  externalId?: string;
  clientMessageId?: string;
  attachments?: Attachment[];
  quickReplies?: QuickReply[];
  delivery?: Delivery;
  replyTo?: string;
  /** The author's participant id (SPEC §8). */
  participantId?: string;
  /** SPEC §12: the trace the message belongs to, while tracing is on. */
  traceparent?: string;
}

export interface MessagePatch {
  text?: string;
  name?: string;
  description?: string;
  /** Merged into the existing meta (shallow); a key set to `null` is removed. */
  meta?: Meta;
  entities?: Entity[];
  attachments?: Attachment[];
  externalId?: string;
  processing?: Processing;
}

export interface AcceptInput {
  conversationId: string;
  /**
   * Dedupe key within the conversation, e.g. `twilio:SM123` or `client:<clientMessageId>`.
   * Remembered for `dedupeTtlS` seconds.
   */
  dedupeKey: string;
  dedupeTtlS: number;
  message: NewMessage;
  /** When set, the message is stored but not queued for the bot. */
  skipQueue?: boolean;
  /** Session idle expiry in seconds: an accept after this much silence starts a new session. */
  sessionIdleS: number;
  /**
   * Someone waits for this message's outcome (e.g. an API call answering with the bot's replies):
   * the {@link Store.complete} that finishes it reports `notify`, so the worker announces it. A
   * duplicate accept with `notify` marks the original message the same way while it is unfinished.
   */
  notify?: boolean;
}

export interface AcceptResult {
  message: Message;
  /** True when the dedupe key was already known: `message` is the original one, nothing was written. */
  duplicate: boolean;
  /** True when this accept started a new session (the conversation's `sessionId` changed). */
  sessionStarted: boolean;
  /** The session that ended because of idle expiry, if any. */
  endedSessionId?: string;
}

/** A lease on one conversation's head message. */
export interface Claim {
  conversationId: string;
  /** The conversation as it was when the lease was granted, read in the same atomic step. */
  conversation: Conversation;
  message: Message;
  /** Fencing token: heartbeat/complete/release only succeed while this token owns the lease. */
  token: string;
  /** How many times this message has been claimed, this claim included (1 on first delivery). */
  deliveries: number;
}

/** The final processing state {@link Store.complete} records; the store stamps `at`. */
export interface ProcessingOutcome {
  state: 'done' | 'skipped' | 'error';
  attempts: number;
  error?: { code: string; message: string };
}

/** Asks {@link Store.complete} to go on with the conversation's next message under a new lease. */
export interface ContinueWith {
  /** The worker taking the next message (as for {@link Store.claim}). */
  owner: string;
  leaseMs: number;
}

export interface CompleteResult {
  /** False when the lease was lost (expired and taken over, or the conversation deleted): nothing written. */
  completed: boolean;
  /** True when an accept asked to be told about this message ({@link AcceptInput.notify}). */
  notify: boolean;
  /** The next message, leased to the caller, when a continuation was asked for and one was queued. */
  next: Claim | null;
  /**
   * With replies given, once completed: the replies to the message as stored, and whether this call
   * recorded them (false when replies to it had been recorded before and these were dropped).
   */
  replies?: Message[];
  repliesRecorded?: boolean;
}

export interface DeliveryUpdateOptions {
  /**
   * The provider's id for the message, stored in the same step (a send's result) whether or not the
   * status moves.
   */
  externalId?: string;
  /**
   * The caller's copy of the message (e.g. the reply it just recorded): the store may apply the step
   * to it without reading the message first. Only a shortcut: when the stored message differs, the
   * step is applied to the stored one as without it.
   */
  known?: Message;
}

export interface DeliveryUpdateResult {
  message: Message;
  /** False when the update was not a forward step (late or repeated callback) and nothing changed. */
  changed: boolean;
}

/** A small key/value facility for adapters (caches, replay markers, thread indexes). */
export interface KeyValue {
  get(key: string): Promise<string | null>;
  set(key: string, value: string, ttlS?: number): Promise<void>;
  /** Sets only when absent; true when this call set it. */
  setIfAbsent(key: string, value: string, ttlS?: number): Promise<boolean>;
  delete(key: string): Promise<void>;
}

/** Cross-process fan-out (Redis pub/sub, or an in-process emitter for the embedded backend). */
export interface Bus {
  publish(topic: string, payload: string): Promise<void>;
  /** Returns an unsubscribe function. */
  subscribe(topic: string, handler: (payload: string) => void): Promise<() => Promise<void>>;
}

export interface Store {
  readonly kind: 'embedded' | 'redis';
  readonly kv: KeyValue;
  readonly bus: Bus;

  // --- conversations -----------------------------------------------------------------------------
  createConversation(input: NewConversation): Promise<Conversation>;
  /** Get-or-create by (channel, channelRef); concurrent callers get the same conversation. */
  resolveConversation(
    input: NewConversation & { channelRef: string },
  ): Promise<{ conversation: Conversation; created: boolean }>;
  getConversation(id: string): Promise<Conversation | null>;
  /** The conversation a channel thread maps to, if any (never creates one). */
  findConversation(channel: ChannelName, channelRef: string): Promise<Conversation | null>;
  /**
   * Contact scope (SPEC §9): maps `route`'s channel thread to the conversation, unless it maps to one
   * already, and records the route on the conversation (idempotent). Answers the conversation the
   * thread maps to afterwards, with `added` false when that is another one (the thread was taken),
   * or null when the conversation does not exist.
   */
  addRoute(
    conversationId: string,
    route: Route,
  ): Promise<{ conversation: Conversation; added: boolean } | null>;
  listConversations(query: ConversationQuery): Promise<Page<Conversation>>;
  updateConversation(id: string, patch: ConversationPatch): Promise<Conversation | null>;
  /**
   * Erases the conversation, its messages, its queue and its channelRef mappings (one per route).
   * With `ifEmpty`, only while no message was ever stored in it (checked in the same atomic step):
   * false, and nothing changed, otherwise.
   */
  deleteConversation(id: string, options?: { ifEmpty?: boolean }): Promise<boolean>;

  // --- messages ----------------------------------------------------------------------------------
  /** Stores a message with the next `seq`, without queueing it (API-created, bot replies, outbound). */
  appendMessage(conversationId: string, input: NewMessage): Promise<Message | null>;
  getMessage(conversationId: string, messageId: string): Promise<Message | null>;
  listMessages(conversationId: string, query: MessageQuery): Promise<Page<Message>>;
  /** Messages with `seq > afterSeq`, ascending, at most `limit`. */
  messagesAfter(conversationId: string, afterSeq: number, limit: number): Promise<Message[]>;
  updateMessage(conversationId: string, messageId: string, patch: MessagePatch): Promise<Message | null>;
  deleteMessage(conversationId: string, messageId: string): Promise<boolean>;
  /** Monotonic delivery update (SPEC §3); `error` is kept with `failed`. */
  updateDelivery(
    conversationId: string,
    messageId: string,
    status: DeliveryStatus,
    error?: { code?: string; message: string },
    options?: DeliveryUpdateOptions,
  ): Promise<DeliveryUpdateResult | null>;
  /**
   * Records the bot replies to `messageId` exactly once. The first caller appends `replies` (with
   * consecutive seqs) and sets `processing.replyIds`; any later caller gets the replies stored first.
   */
  recordReplies(conversationId: string, messageId: string, replies: NewMessage[]): Promise<Message[]>;
  /**
   * Claims the right to hand `messageId` to the provider; true exactly once per message. Used so a
   * redelivered inbound message never sends the same reply twice.
   */
  claimSend(conversationId: string, messageId: string): Promise<boolean>;

  // --- ingest and the per-conversation ordered queue ---------------------------------------------
  /**
   * One atomic step: dedupe on `dedupeKey`, assign `seq`, store, enqueue, roll the session.
   * @throws QueueFullError when the queue limit is reached (nothing written).
   * @throws StoreUnavailableError when the backend is unreachable (nothing written).
   */
  accept(input: AcceptInput): Promise<AcceptResult>;
  /**
   * Claims up to `max` conversations whose head message is ready and not leased, leasing each for
   * `leaseMs`. A conversation has at most one claim at a time; an expired lease makes its head message
   * claimable again (redelivery, `deliveries` + 1).
   */
  claim(owner: string, max: number, leaseMs: number): Promise<Claim[]>;
  /** Extends the lease; false when the lease was lost (expired and taken over). */
  heartbeat(claim: Claim, leaseMs: number): Promise<boolean>;
  /**
   * One atomic step, fenced by the claim's token (nothing is written once the lease was lost): records
   * `outcome` as the message's `processing` (left as it is when omitted; `replyIds` stay those of
   * {@link recordReplies}; the message's `updatedAt` tracks content edits and does not move), removes
   * the message from the queue, and then either frees the conversation or, with `next` and more
   * messages queued, keeps it: the next head message is leased to `next.owner` for `next.leaseMs` under a
   * new token (the old one is fenced off) and returned as a claim, counted as a delivery and an attempt
   * like any claim. Otherwise the conversation is claimable again at once if messages wait, or leaves
   * the schedule if none do.
   *
   * With `replies`, the same step first records them as {@link recordReplies} would (exactly once per
   * message): for channels where storing a reply is delivering it, so reply and completion are one
   * write and a crash leaves either both or neither.
   */
  complete(
    claim: Claim,
    outcome?: ProcessingOutcome,
    next?: ContinueWith,
    replies?: NewMessage[],
  ): Promise<CompleteResult>;
  /** Hands the head message back unprocessed (graceful shutdown); it is claimable again at once. */
  release(claim: Claim): Promise<void>;
  /**
   * Resolves when new work may be claimable or after `timeoutMs`, whichever is first; a blocking wait
   * (Redis: a blocking pop on a doorbell list), never a poll loop.
   */
  waitForWork(timeoutMs: number, signal?: AbortSignal): Promise<void>;
  /** Messages accepted and not yet completed, over all conversations. */
  pendingCount(): Promise<number>;

  // --- lifecycle ---------------------------------------------------------------------------------
  ping(): Promise<boolean>;
  close(): Promise<void>;
}
