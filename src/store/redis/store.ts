/**
 * @module The Redis backend: the production store that any number of gateway processes share
 * (standalone, Sentinel or Cluster). Every write that must be atomic is one Lua script over the keys of
 * a single partition (see `keys.ts` for the layout and `lua/` for the scripts); cross-partition keys
 * are written in separate idempotent steps, ordered so that a crash between them heals on the next
 * call. Scripts never parse message or conversation JSON, except `processing`, which holds no arrays.
 */
import { randomUUID } from 'node:crypto';
import type { Cluster } from 'ioredis';
import type { Logger } from 'pino';
import { GatewayError, QueueFullError, StoreUnavailableError } from '../../core/errors.js';
import { extend } from '../../core/extend.js';
import { newId } from '../../core/ids.js';
import type {
  ChannelName,
  Conversation,
  DeliveryStatus,
  Message,
  Processing,
  Route,
} from '../../core/model.js';
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
} from '../../core/store.js';
import {
  applyConversationPatch,
  applyDeliveryUpdate,
  applyMessagePatch,
  type ConversationDoc,
  conversationCursor,
  conversationMatches,
  draftMessage,
  hasConversationFilters,
  hasMessageFilters,
  type MessageDraft,
  messageCursor,
  messageMatches,
  newConversation,
  parseConversationCursor,
  parseMessageCursor,
  pickConversationDoc,
  routesOf,
  toPage,
  withRoute,
} from '../shared.js';
import { coalesceWrites } from './coalesce.js';
import {
  type ClientTimeouts,
  createRedisClient,
  duplicateClient,
  isRedirectError,
  isUnavailableError,
  type RedisClient,
  waitReady,
} from './connection.js';
import { type ConversationKeys, KeyLayout } from './keys.js';
import { ReplicaRequirement, ReplicationMemory, type WaitPolicy } from './replication.js';
import { defineScripts, SCRIPTS, type ScriptName, type ScriptRun } from './scripts.js';

/** Doorbell rings kept while no worker listens: enough to wake every process, small enough to ignore. */
const BELL_CAP = 128;
const PING_TIMEOUT_MS = 1_000;
/** Read-modify-write retries before a hot record is reported as a conflict. */
const CAS_ATTEMPTS = 16;
/** Records read per round trip while a filtered list skips non-matching ones. */
const SCAN_BATCH = 100;
const DEFAULT_TIMEOUTS: ClientTimeouts = { commandTimeoutMs: 5_000, connectTimeoutMs: 10_000 };
const DEFAULT_WAIT: WaitPolicy = { replicas: 'auto', timeoutMs: 500 };
/**
 * How long an idempotent step the bot's answer depends on (a completion, recording replies) is retried
 * while Redis cannot serve: a failover takes a few seconds, and giving up means asking the bot again.
 */
const RETRY_BUDGET_MS = 10_000;

/** Retries `op` while it fails with StoreUnavailableError, backing off, for at most `budgetMs`. */
async function retrying<T>(op: () => Promise<T>, budgetMs = RETRY_BUDGET_MS): Promise<T> {
  const deadline = Date.now() + budgetMs;
  for (let attempt = 0; ; attempt++) {
    try {
      return await op();
    } catch (err) {
      if (!(err instanceof StoreUnavailableError) || Date.now() >= deadline) throw err;
      await new Promise((r) => setTimeout(r, Math.min(1_000, 100 * 2 ** attempt)));
    }
  }
}

export interface RedisStoreOptions {
  /**
   * The connection; the store owns it from now on and closes it in `close()`. Create it with
   * `createRedisClient` (or equally fail-fast options) so that calls fail at once while Redis is down.
   */
  redis: RedisClient;
  keyPrefix: string;
  /** Queue partitions (hash-tag groups). Fixed for the life of the data: see {@link RedisStore.verifyLayout}. */
  partitions: number;
  /**
   * The pending-message limit. Each partition enforces `ceil(maxPending / partitions)` on its own
   * counter, inside the accept script: a global counter would be a cross-slot key in Cluster. With
   * conversations spread evenly the total stays close to `maxPending`; one hot partition fills first.
   */
  maxPending: number;
  /** The Retry-After the QueueFullError carries. */
  retryAfterS: number;
  /**
   * Replica confirmations (`WAIT`) the writes the gateway acts on need: accepts, claims, completions,
   * replies and send markers (docs/replication.md). Default: `auto`, 500 ms.
   */
  wait?: WaitPolicy;
  logger?: Logger;
}

export interface RedisConnectOptions extends Omit<RedisStoreOptions, 'redis'>, Partial<ClientTimeouts> {}

type AcceptReply =
  | ['missing']
  | ['full']
  | ['dup', string, string | null, string | null]
  | ['ok', number, string, string, number];
type AppendReply = ['missing'] | ['dup', string] | ['ok', string, ...number[]];
/**
 * One claim as claim-3 and complete-7 return it: conversation id, token, deliveries, message body,
 * processing JSON, reply ids JSON (null when none), and the conversation hash fields {@link CONV_FIELDS}.
 */
type ClaimTuple = [string, string, number, string, string, string | null, (string | null)[]];
type ClaimReply = [number, ...ClaimTuple[]];
/**
 * complete-7's account of the replies it was given: recorded now, recorded before (by another
 * completion, or by an earlier try of this one: 'again'), or none given.
 */
type RepliesReply = ['ok', string, ...number[]] | ['dup' | 'again', string] | null;
type CompleteReply = [0] | [1 | 2, number, null, RepliesReply] | [3, number, ClaimTuple, RepliesReply];

/** The conversation hash fields the scripts read for a claim, in the order they return them. */
const CONV_FIELDS = ['doc', 'sessionId', 'sessionStartedAt', 'sessionState', 'updatedAt', 'lastMessageAt'];

/**
 * Maps connection trouble to StoreUnavailableError; everything else (bugs, GatewayErrors) passes. A
 * redirect that reached the caller (the slot moved in a failover) also has `onRedirect` reload the
 * Cluster slot table, so the retry goes to the new master.
 */
async function guard<T>(op: () => Promise<T>, onRedirect?: () => void): Promise<T> {
  try {
    return await op();
  } catch (err) {
    if (err instanceof StoreUnavailableError) throw err;
    if (onRedirect && isRedirectError(err)) onRedirect();
    throw isUnavailableError(err) ? new StoreUnavailableError(err) : err;
  }
}

/**
 * A write that was made but that too few replicas confirmed in time: it may or may not survive a
 * failover. Carries the write's own reply, so that a caller can undo what it must not keep.
 */
class UnconfirmedWriteError extends StoreUnavailableError {
  readonly result: unknown;

  constructor(cause: Error, result: unknown) {
    super(cause);
    this.result = result;
  }
}

/** A write not even sent: its master is known to have too few replicas online to confirm it. */
function tooFewReplicas(needed: number): StoreUnavailableError {
  return new StoreUnavailableError(
    new Error(`The Redis master has fewer than ${needed} replica(s) online to confirm writes`),
  );
}

/** The part of an ioredis pipeline the durable writes use. */
type Pipe = Record<string, (...a: unknown[]) => Pipe> & {
  wait(replicas: number, timeoutMs: number): Pipe;
  exec(): Promise<[Error | null, unknown][] | null>;
};

/** Logs the first error of an outage and the recovery, not every reconnect attempt. */
function watchConnection(client: RedisClient, role: string, logger: Logger | undefined): void {
  let down = false;
  client.on('error', (err: Error) => {
    if (down) return;
    down = true;
    logger?.warn({ err, connection: role }, 'redis connection lost; reconnecting');
  });
  client.on('ready', () => {
    if (!down) return;
    down = false;
    logger?.info({ connection: role }, 'redis connection restored');
  });
}

function assembleMessage(body: string, processing: string | null, replyIds: string | null): Message {
  const m = JSON.parse(body) as Message;
  if (processing !== null) {
    m.processing = JSON.parse(processing) as Processing;
    if (replyIds !== null) m.processing.replyIds = JSON.parse(replyIds) as string[];
  }
  return m;
}

/** The stored form: the body, and `processing` (without reply ids) kept beside it for the scripts. */
function splitMessage(m: Message): { body: string; processing: string | null } {
  const { processing, ...body } = m;
  if (!processing) return { body: JSON.stringify(body), processing: null };
  const { replyIds: _owned, ...rest } = processing;
  return { body: JSON.stringify(body), processing: JSON.stringify(rest) };
}

function toConversation(h: Record<string, string>): Conversation | null {
  if (h.doc === undefined) return null;
  return extend(JSON.parse(h.doc) as ConversationDoc, {
    sessionId: h.sessionId!,
    sessionStartedAt: h.sessionStartedAt!,
    sessionState: JSON.parse(h.sessionState ?? '{}') as Conversation['sessionState'],
    updatedAt: h.updatedAt!,
    lastMessageAt: h.lastMessageAt ?? null,
  });
}

function toClaim([conversationId, token, deliveries, body, processing, replyIds, fields]: ClaimTuple): Claim {
  const h: Record<string, string> = {};
  for (const [i, f] of CONV_FIELDS.entries()) if (fields[i] != null) h[f] = fields[i];
  const conversation = toConversation(h);
  // The scripts only lease the queue of an existing conversation: deleting one removes its queue too.
  if (!conversation) throw new Error(`Conversation ${conversationId} has a queue but no record`);
  return {
    conversationId,
    conversation,
    token,
    deliveries,
    message: assembleMessage(body, processing, replyIds),
  };
}

/** `total` split as evenly as possible over `parts`, earlier parts taking the remainder. */
function evenShares(total: number, parts: readonly number[]): Map<number, number> {
  const base = Math.floor(total / parts.length);
  return new Map(parts.map((p, i) => [p, base + (i < total % parts.length ? 1 : 0)]));
}

/**
 * Message ids name fields of the messages hash, beside `<id>:p`-style side fields; an id with a ':'
 * (never one of ours) could address another message's side field, so it matches no message.
 */
function isMessageId(id: string): boolean {
  return !id.includes(':');
}

function conflict(): GatewayError {
  return new GatewayError('GW_ERR_CONFLICT', 'The record kept changing while being updated; retry');
}

/** The Redis {@link Store}. */
export class RedisStore implements Store {
  readonly kind = 'redis' as const;
  readonly kv: KeyValue;
  readonly bus: Bus;

  readonly #redis: RedisClient;
  readonly #keys: KeyLayout;
  readonly #run: ScriptRun;
  /** Accepts only, on a connection of their own: see {@link RedisStore.accept}. */
  readonly #acceptor: RedisClient;
  readonly #runAccept: ScriptRun;
  readonly #mainWait: ReplicaRequirement;
  readonly #acceptWait: ReplicaRequirement;
  readonly #pendingLimit: number;
  readonly #retryAfterS: number;
  readonly #logger: Logger | undefined;
  readonly #redisBus: RedisBus;
  /** The connection that blocks on the doorbell; created on the first wait. */
  #blocker: RedisClient | null = null;
  /** Callers of waitForWork, with their deadlines. */
  readonly #waiters = new Map<() => void, number>();
  #listening = false;
  #nextPartition = 0;
  #closed = false;

  /** {@link guard}, reloading the Cluster slot tables of this store's connections on a redirect. */
  readonly #guard = <T>(op: () => Promise<T>): Promise<T> =>
    guard(op, () => {
      for (const client of [this.#redis, this.#acceptor]) {
        if (client.isCluster) (client as Cluster).refreshSlotsCache();
      }
    });

  constructor(options: RedisStoreOptions) {
    this.#redis = options.redis;
    // The engine's commands come in bursts (the continuations of one read of replies): one write each.
    coalesceWrites(options.redis);
    this.#keys = new KeyLayout(options.keyPrefix, options.partitions);
    this.#run = defineScripts(options.redis, SCRIPTS, 'switchboard');
    this.#acceptor = duplicateClient(options.redis, 'pipelined');
    // Only the accept: ioredis copies every script defined on a connection onto each pipeline it makes,
    // and the auto-pipelined connection makes one per batch.
    this.#runAccept = defineScripts(
      this.#acceptor,
      SCRIPTS.filter((s) => s.name === 'accept'),
      'switchboard',
    );
    watchConnection(this.#acceptor, 'accept', options.logger);
    // Per connection: on Sentinel each one finds the master on its own, and during a failover two
    // connections can be on different servers.
    const memory = new ReplicationMemory();
    const wait = options.wait ?? DEFAULT_WAIT;
    this.#mainWait = new ReplicaRequirement(options.redis, wait, memory, options.logger);
    this.#acceptWait = new ReplicaRequirement(this.#acceptor, wait, memory, options.logger);
    this.#pendingLimit = Math.ceil(options.maxPending / options.partitions);
    this.#retryAfterS = options.retryAfterS;
    this.#logger = options.logger;
    watchConnection(options.redis, 'main', options.logger);
    this.kv = new RedisKeyValue(options.redis, this.#acceptor, this.#keys);
    this.#redisBus = new RedisBus(options.redis, this.#acceptor, this.#keys, options.logger);
    this.bus = this.#redisBus;
  }

  /** The main connection and key layout, shared with rooms that keep keys beside the store's (contacts). */
  get shared(): { redis: RedisClient; keys: KeyLayout; wait: ReplicaRequirement } {
    return { redis: this.#redis, keys: this.#keys, wait: this.#mainWait };
  }

  /**
   * Connects to a REDIS_URL (see `connection.ts` for the accepted forms), waits until Redis answers and
   * checks the layout. Throws StoreUnavailableError when Redis cannot be reached in time.
   */
  static async connect(url: string, options: RedisConnectOptions): Promise<RedisStore> {
    const { commandTimeoutMs, connectTimeoutMs, ...storeOptions } = options;
    const timeouts: ClientTimeouts = {
      commandTimeoutMs: commandTimeoutMs ?? DEFAULT_TIMEOUTS.commandTimeoutMs,
      connectTimeoutMs: connectTimeoutMs ?? DEFAULT_TIMEOUTS.connectTimeoutMs,
    };
    const redis = createRedisClient(url, timeouts);
    const store = new RedisStore({ ...storeOptions, redis });
    try {
      await Promise.all(
        [redis, store.#acceptor].map((client) => waitReady(client, timeouts.connectTimeoutMs)),
      ).catch((err: unknown) => {
        throw new StoreUnavailableError(err);
      });
      await store.verifyLayout();
      await Promise.all([store.#mainWait.refresh(), store.#acceptWait.refresh()]);
      return store;
    } catch (err) {
      await store.close();
      throw err;
    }
  }

  /**
   * Records the partition count on first use and refuses to run with another one: conversations are
   * placed by `hash(id) % partitions`, so a changed count would orphan every queued message.
   */
  async verifyLayout(): Promise<void> {
    const wanted = String(this.#keys.partitions);
    await this.#guard(async () => {
      await this.#redis.set(this.#keys.layout, wanted, 'NX');
      const stored = await this.#redis.get(this.#keys.layout);
      if (stored !== wanted) {
        throw new Error(
          `The Redis data under prefix "${this.#keys.prefix}" uses ${stored} queue partitions, but QUEUE_PARTITIONS is ${wanted}; ` +
            'keep the old value or use another REDIS_KEY_PREFIX',
        );
      }
    });
  }

  // --- conversations -----------------------------------------------------------------------------

  createConversation(input: NewConversation): Promise<Conversation> {
    return this.#guard(async () => {
      const id = newId('conv');
      const c = newConversation(id, input, new Date().toISOString(), newId('sess'));
      await this.#insertConversation(c);
      // An explicit channelRef becomes resolvable, unless another conversation already owns it.
      if (input.channelRef !== undefined) {
        const ref = this.#keys.ref(c.channel, c.channelRef);
        await this.#durableCommands(ref, (p) => p.set!(ref, id, 'NX'));
      }
      return c;
    });
  }

  resolveConversation(
    input: NewConversation & { channelRef: string },
  ): Promise<{ conversation: Conversation; created: boolean }> {
    return this.#guard(async () => {
      const ref = this.#keys.ref(input.channel, input.channelRef);
      // A few rounds cover losing the mapping race and a concurrent delete; more means a pathological loop.
      for (let round = 0; round < 5; round++) {
        let id = await this.#redis.get(ref);
        if (id === null) {
          id = newId('conv');
          // Confirmed: a mapping the new master lacks after a failover would split the thread in two.
          const [set] = await this.#durableCommands(ref, (p) => p.set!(ref, id as string, 'NX'));
          if (set !== 'OK') continue;
        } else {
          const existing = await this.#getConversation(id);
          if (existing) return { conversation: existing, created: false };
        }
        // The mapping exists without its conversation: this caller just created the mapping, or a
        // process died between the two steps. Creating is idempotent, so both cases heal the same way.
        const c = newConversation(id, input, new Date().toISOString(), newId('sess'));
        if (await this.#insertConversation(c)) return { conversation: c, created: true };
        const raced = await this.#getConversation(id);
        if (raced) return { conversation: raced, created: false };
      }
      throw conflict();
    });
  }

  getConversation(id: string): Promise<Conversation | null> {
    return this.#guard(() => this.#getConversation(id));
  }

  findConversation(channel: ChannelName, channelRef: string): Promise<Conversation | null> {
    return this.#guard(async () => {
      const id = await this.#redis.get(this.#keys.ref(channel, channelRef));
      return id === null ? null : this.#getConversation(id);
    });
  }

  addRoute(
    conversationId: string,
    route: Route,
  ): Promise<{ conversation: Conversation; added: boolean } | null> {
    return this.#guard(async () => {
      const ref = this.#keys.ref(route.channel, route.channelRef);
      const key = this.#keys.conversation(conversationId).conv;
      if ((await this.#redis.exists(key)) === 0) return null;
      for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
        // The mapping first, as in resolveConversation (confirmed, so a failover cannot split the
        // thread); a crash before the route is recorded leaves a mapping the next call completes.
        const [set] = await this.#durableCommands(ref, (p) => p.set!(ref, conversationId, 'NX'));
        if (set !== 'OK') {
          const owner = await this.#redis.get(ref);
          if (owner === null) continue;
          if (owner !== conversationId) {
            const taken = await this.#getConversation(owner);
            if (taken) return { conversation: taken, added: false };
            // A mapping left by a deleted conversation: take it over only if it is still that one.
            await this.#run('cad', [ref], [owner]);
            continue;
          }
        }
        const h = await this.#redis.hgetall(key);
        const current = toConversation(h);
        if (!current) {
          await this.#run('cad', [ref], [conversationId]);
          return null;
        }
        const next = withRoute(current, route);
        if (next === current) return { conversation: current, added: true };
        const at = new Date().toISOString();
        const sets = ['doc', JSON.stringify(pickConversationDoc(next)), 'updatedAt', at];
        if (await this.#cas(key, ['doc', h.doc!], sets))
          return { conversation: { ...next, updatedAt: at }, added: true };
      }
      throw conflict();
    });
  }

  listConversations(query: ConversationQuery): Promise<Page<Conversation>> {
    return this.#guard(async () => {
      let from = query.cursor === undefined ? undefined : parseConversationCursor(query.cursor);
      const asc = query.order === 'asc';
      const batch = hasConversationFilters(query) ? Math.max(query.take + 1, SCAN_BATCH) : query.take + 1;
      const out: Conversation[] = [];
      while (out.length <= query.take) {
        const ids = asc
          ? await this.#redis.zrangebylex(
              this.#keys.index,
              from === undefined ? '-' : `(${from}`,
              '+',
              'LIMIT',
              0,
              batch,
            )
          : await this.#redis.zrevrangebylex(
              this.#keys.index,
              from === undefined ? '+' : `(${from}`,
              '-',
              'LIMIT',
              0,
              batch,
            );
        // Index entries without a conversation (a crash mid-create or mid-delete) are skipped.
        const found = await Promise.all(ids.map((id) => this.#getConversation(id)));
        for (const c of found) if (c && conversationMatches(c, query)) out.push(c);
        if (ids.length < batch) break;
        from = ids[ids.length - 1];
      }
      return toPage(out.slice(0, query.take + 1), query.take, (c) => conversationCursor(c.id));
    });
  }

  updateConversation(id: string, patch: ConversationPatch): Promise<Conversation | null> {
    return this.#guard(async () => {
      const key = this.#keys.conversation(id).conv;
      for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
        const h = await this.#redis.hgetall(key);
        const current = toConversation(h);
        if (!current) return null;
        const next = applyConversationPatch(current, patch, new Date().toISOString());
        // Session state belongs to one session: a roll in between makes the write retry.
        const checks = ['doc', h.doc!, ...(patch.sessionState ? ['sessionId', current.sessionId] : [])];
        const sets = ['doc', JSON.stringify(pickConversationDoc(next)), 'updatedAt', next.updatedAt];
        if (patch.sessionState) sets.push('sessionState', JSON.stringify(next.sessionState));
        if (await this.#cas(key, checks, sets)) return next;
      }
      throw conflict();
    });
  }

  deleteConversation(id: string, options: { ifEmpty?: boolean } = {}): Promise<boolean> {
    return this.#guard(async () => {
      const c = await this.#getConversation(id);
      if (!c) return false;
      // Mapping first, so a crash part-way leaves a listed conversation to delete again rather than a
      // mapping that would resurrect it.
      for (const route of routesOf(c))
        await this.#run('cad', [this.#keys.ref(route.channel, route.channelRef)], [id]);
      const k = this.#keys.conversation(id);
      // Confirmed: an erasure the new master lacks after a failover would bring the data back.
      const outcome = await this.#durable(
        this.#redis,
        this.#mainWait,
        this.#run,
        'delconv',
        [k.conv, k.msgs, k.seqidx, k.queue, k.sched, k.lease, k.pending],
        [id, options.ifEmpty ? '1' : '0'],
      );
      if (outcome === -1) {
        // Not empty after all: its threads map to it again, unless another conversation took one.
        for (const route of routesOf(c)) {
          const ref = this.#keys.ref(route.channel, route.channelRef);
          await this.#durableCommands(ref, (p) => p.set!(ref, id, 'NX'));
        }
        return false;
      }
      await this.#redis.zrem(this.#keys.index, id);
      return outcome === 1;
    });
  }

  // --- messages ----------------------------------------------------------------------------------

  appendMessage(conversationId: string, input: NewMessage): Promise<Message | null> {
    return this.#guard(async () => {
      const at = new Date().toISOString();
      const draft = draftMessage(conversationId, input, at);
      const reply = await this.#append(conversationId, '', [draft], at);
      if (reply[0] !== 'ok') return null;
      return { seq: reply[2]!, sessionId: reply[1], ...draft };
    });
  }

  getMessage(conversationId: string, messageId: string): Promise<Message | null> {
    return this.#guard(async () => {
      if (!isMessageId(messageId)) return null;
      const [m] = await this.#readMessages(this.#keys.conversation(conversationId), [messageId]);
      return m ?? null;
    });
  }

  listMessages(conversationId: string, query: MessageQuery): Promise<Page<Message>> {
    return this.#guard(async () => {
      let from = query.cursor === undefined ? undefined : parseMessageCursor(query.cursor);
      const asc = query.order === 'asc';
      const k = this.#keys.conversation(conversationId);
      const batch = hasMessageFilters(query) ? Math.max(query.take + 1, SCAN_BATCH) : query.take + 1;
      const out: Message[] = [];
      while (out.length <= query.take) {
        const flat = asc
          ? await this.#redis.zrangebyscore(
              k.seqidx,
              from === undefined ? '-inf' : `(${from}`,
              '+inf',
              'WITHSCORES',
              'LIMIT',
              0,
              batch,
            )
          : await this.#redis.zrevrangebyscore(
              k.seqidx,
              from === undefined ? '+inf' : `(${from}`,
              '-inf',
              'WITHSCORES',
              'LIMIT',
              0,
              batch,
            );
        const ids = flat.filter((_, i) => i % 2 === 0);
        for (const m of await this.#readMessages(k, ids)) if (messageMatches(m, query)) out.push(m);
        if (ids.length < batch) break;
        from = Number(flat[flat.length - 1]);
      }
      return toPage(out.slice(0, query.take + 1), query.take, (m) => messageCursor(m.seq));
    });
  }

  messagesAfter(conversationId: string, afterSeq: number, limit: number): Promise<Message[]> {
    return this.#guard(async () => {
      if (limit < 1) return [];
      const k = this.#keys.conversation(conversationId);
      const ids = await this.#redis.zrangebyscore(k.seqidx, `(${afterSeq}`, '+inf', 'LIMIT', 0, limit);
      return this.#readMessages(k, ids);
    });
  }

  updateMessage(conversationId: string, messageId: string, patch: MessagePatch): Promise<Message | null> {
    return this.#guard(async () => {
      if (!isMessageId(messageId)) return null;
      const k = this.#keys.conversation(conversationId);
      for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
        const stored = await this.#readStored(k, messageId);
        if (!stored) return null;
        const { body, processing, replyIds } = stored;
        const next = splitMessage(applyMessagePatch(stored.message, patch, new Date().toISOString()));
        const sets = [messageId, next.body];
        // processing is written only when patched, so a concurrent claim's update is not undone.
        if (patch.processing && next.processing) sets.push(`${messageId}:p`, next.processing);
        if (await this.#cas(k.msgs, [messageId, body], sets)) {
          return assembleMessage(next.body, patch.processing ? next.processing : processing, replyIds);
        }
      }
      throw conflict();
    });
  }

  deleteMessage(conversationId: string, messageId: string): Promise<boolean> {
    return this.#guard(async () => {
      if (!isMessageId(messageId)) return false;
      const k = this.#keys.conversation(conversationId);
      const args = [messageId];
      return (
        (await this.#durable(this.#redis, this.#mainWait, this.#run, 'delmsg', [k.msgs, k.seqidx], args)) ===
        1
      );
    });
  }

  updateDelivery(
    conversationId: string,
    messageId: string,
    status: DeliveryStatus,
    error?: { code?: string; message: string },
    options?: DeliveryUpdateOptions,
  ): Promise<DeliveryUpdateResult | null> {
    return this.#guard(async () => {
      if (!isMessageId(messageId)) return null;
      const k = this.#keys.conversation(conversationId);
      const externalId = options?.externalId;
      const known = options?.known;
      // The caller's copy saves the read when the stored body is still exactly its body. Only for
      // messages without processing, whose stored form is the body alone (outbound messages).
      if (known?.id === messageId && known.processing === undefined) {
        const step = applyDeliveryUpdate(known, status, error, externalId, new Date().toISOString());
        if (
          step &&
          (await this.#cas(
            k.msgs,
            [messageId, splitMessage(known).body],
            [messageId, splitMessage(step.message).body],
          ))
        ) {
          return step;
        }
      }
      for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
        const stored = await this.#readStored(k, messageId);
        if (!stored) return null;
        const { body, message: current } = stored;
        const step = applyDeliveryUpdate(current, status, error, externalId, new Date().toISOString());
        if (!step) return { message: current, changed: false };
        if (await this.#cas(k.msgs, [messageId, body], [messageId, splitMessage(step.message).body])) {
          return step;
        }
      }
      throw conflict();
    });
  }

  recordReplies(conversationId: string, messageId: string, replies: NewMessage[]): Promise<Message[]> {
    return this.#guard(async () => {
      if (!isMessageId(messageId)) return [];
      const at = new Date().toISOString();
      const drafts = replies.map((r) =>
        draftMessage(conversationId, extend(r, { replyTo: r.replyTo ?? messageId }), at),
      );
      // Retried through a failover: the reply guard records them once however often this runs.
      const reply = await retrying(() =>
        this.#guard(() => this.#append(conversationId, messageId, drafts, at)),
      );
      if (reply[0] === 'missing') return [];
      if (reply[0] === 'dup') {
        return this.#readMessages(this.#keys.conversation(conversationId), JSON.parse(reply[1]) as string[]);
      }
      const [, sessionId, ...seqs] = reply;
      // Keys in the stored order (seq and sessionId first), so a reply's body is its stored body.
      return drafts.map((d, i) => ({ seq: seqs[i]!, sessionId, ...d }));
    });
  }

  claimSend(conversationId: string, messageId: string): Promise<boolean> {
    return this.#guard(async () => {
      if (!isMessageId(messageId)) return false;
      const k = this.#keys.conversation(conversationId);
      const claimed = await this.#durable(
        this.#redis,
        this.#mainWait,
        this.#run,
        'claimsend',
        [k.conv, k.msgs],
        [messageId],
      );
      return claimed === 1;
    });
  }

  // --- ingest and the queue ----------------------------------------------------------------------

  /**
   * One `accept` script. Accepts come from concurrent requests and do not wait on each other, so they
   * run on an auto-pipelined connection of their own: the accepts of one event-loop turn go out in one
   * write, which is most of the ingest path's cost under load. The queue's chains of dependent calls
   * (claim, complete, heartbeat) stay on the main connection, where batching would delay each link.
   */
  accept(input: AcceptInput): Promise<AcceptResult> {
    return this.#guard(async () => {
      const now = Date.now();
      const at = new Date(now).toISOString();
      const k = this.#keys.conversation(input.conversationId);
      const draft = draftMessage(
        input.conversationId,
        extend(input.message, { direction: 'inbound' as const }),
        at,
      );
      const processing: Processing = { state: 'queued', attempts: 0, at };
      const reply = (await this.#durable(
        this.#acceptor,
        this.#acceptWait,
        this.#runAccept,
        'accept',
        [
          k.conv,
          k.msgs,
          k.seqidx,
          k.queue,
          k.sched,
          k.pending,
          this.#keys.dedupe(input.conversationId, input.dedupeKey),
        ],
        [
          input.conversationId,
          draft.id,
          JSON.stringify(draft),
          JSON.stringify(processing),
          Math.max(1, Math.ceil(input.dedupeTtlS)),
          input.sessionIdleS * 1000,
          now,
          at,
          newId('sess'),
          input.skipQueue ? '1' : '0',
          this.#pendingLimit,
          input.notify ? '1' : '0',
        ],
      )) as AcceptReply;
      switch (reply[0]) {
        case 'missing':
          throw new GatewayError('GW_ERR_NOT_FOUND', 'Conversation not found');
        case 'full':
          throw new QueueFullError(this.#retryAfterS);
        case 'dup':
          return {
            message: assembleMessage(reply[1], reply[2], reply[3]),
            duplicate: true,
            sessionStarted: false,
          };
        case 'ok': {
          const [, seq, sessionId, ended, ready] = reply;
          if (ready === 1) this.#ring();
          const message: Message = extend(
            draft,
            input.skipQueue ? { seq, sessionId } : { seq, sessionId, processing },
          );
          return {
            message,
            duplicate: false,
            sessionStarted: ended !== '',
            ...(ended === '' ? {} : { endedSessionId: ended }),
          };
        }
      }
    });
  }

  /**
   * One `claim` script per partition asked, each leasing its share on its own (claimable conversations
   * are found inside the script). Up to three rounds, each sent as one batch:
   * 1. the next `min(partitions, max)` partitions in rotation share `max`, so a worker with one free
   *    slot asks one partition, and successive calls visit every partition in turn (none starves);
   * 2. if that came back short, the partitions not asked yet are asked to count their claimable
   *    conversations (a share of 0);
   * 3. what is still missing is shared among the partitions known to have claimable ones left.
   * Never more than `max` leases; an empty answer means nothing was claimable, and the caller waits for
   * the doorbell rather than asking again.
   */
  claim(owner: string, max: number, leaseMs: number): Promise<Claim[]> {
    return this.#guard(async () => {
      if (max < 1) return [];
      const n = this.#keys.partitions;
      const first = this.#nextPartition;
      const order = Array.from({ length: n }, (_, i) => (first + i) % n);
      const asked = Math.min(n, max);
      this.#nextPartition = (first + asked) % n;
      const at = new Date().toISOString();
      const claims: Claim[] = [];
      const left = new Map<number, number>();
      // A partition that cannot serve now gives nothing; the others' claims still count.
      let unavailable: unknown = null;
      const round = async (shares: Map<number, number>) => {
        const replies = await Promise.allSettled(
          [...shares].map(([p, share]) => this.#claimIn(p, share, owner, leaseMs, at)),
        );
        for (const [i, p] of [...shares.keys()].entries()) {
          const reply = replies[i]!;
          if (reply.status === 'rejected') {
            if (!(reply.reason instanceof StoreUnavailableError || isUnavailableError(reply.reason)))
              throw reply.reason;
            unavailable ??= reply.reason;
            left.set(p, 0);
            continue;
          }
          const [claimable, ...tuples] = reply.value;
          left.set(p, claimable);
          for (const t of tuples) claims.push(toClaim(t));
        }
      };
      await round(evenShares(max, order.slice(0, asked)));
      if (claims.length < max && asked < n) await round(new Map(order.slice(asked).map((p) => [p, 0])));
      const shares = new Map<number, number>();
      for (let missing = max - claims.length, gave = true; missing > 0 && gave; ) {
        gave = false;
        for (const p of order) {
          const share = shares.get(p) ?? 0;
          if (missing > 0 && (left.get(p) ?? 0) > share) {
            shares.set(p, share + 1);
            missing--;
            gave = true;
          }
        }
      }
      if (shares.size > 0) await round(shares);
      if (claims.length === 0 && unavailable) throw unavailable;
      return claims;
    });
  }

  heartbeat(claim: Claim, leaseMs: number): Promise<boolean> {
    return this.#guard(async () => {
      const k = this.#keys.conversation(claim.conversationId);
      // Not confirmed by replicas: an extension the new master lacks only brings the lease's end
      // back to the last one it has, and the next heartbeat, on the new master, extends it again; a
      // WAIT here would only make a heartbeat's answer late.
      const extended = await this.#run(
        'heartbeat',
        [k.sched, k.lease],
        [claim.conversationId, claim.token, leaseMs],
      );
      return extended === 1;
    });
  }

  complete(
    claim: Claim,
    outcome?: ProcessingOutcome,
    next?: ContinueWith,
    replies?: NewMessage[],
  ): Promise<CompleteResult> {
    return this.#guard(async () => {
      const k = this.#keys.conversation(claim.conversationId);
      const now = Date.now();
      const at = new Date(now).toISOString();
      const processing: Processing | undefined = outcome && extend(outcome, { at });
      const drafts = replies?.map((r) =>
        draftMessage(claim.conversationId, extend(r, { replyTo: r.replyTo ?? claim.message.id }), at),
      );
      // Replicated before the replies are sent or the next message goes to the bot: see #durable.
      // Retried through a failover: the claim was replicated, so the new master still has this lease,
      // and the token fences the retry off once another owner took over. A retry of a completion that
      // did land (its replicas confirmed too late, or the answer was lost) is told apart by the
      // completion id it left on the message, and gets the same answer again (complete-7), so the same
      // token for the next lease is used on every try.
      const nextToken = next ? `${next.owner}:${randomUUID()}` : '';
      const completion = randomUUID();
      const keys = [k.sched, k.lease, k.pending, k.queue, k.msgs, k.conv, k.seqidx];
      const args = [
        claim.conversationId,
        claim.token,
        claim.message.id,
        processing ? JSON.stringify(processing) : '',
        nextToken,
        next?.leaseMs ?? 0,
        at,
        drafts ? JSON.stringify(drafts.map((d) => d.id)) : '',
        now,
        completion,
        ...(drafts ?? []).map((d) => JSON.stringify(d)),
      ];
      const reply = (await retrying(() =>
        this.#guard(() =>
          this.#durable(this.#redis, this.#mainWait, this.#run, 'complete', keys, args, true),
        ),
      ).catch(async (err: unknown) => {
        // Still unconfirmed when the retries are over: the caller gives the message up to a
        // redelivery. The next message this completion leased would wait out a lease no worker
        // holds: hand it back at once, uncounted, as an unconfirmed claim is.
        if (err instanceof UnconfirmedWriteError && (err.result as CompleteReply)[0] === 3) {
          const [, , [, token, , body]] = err.result as [3, number, ClaimTuple, RepliesReply];
          const messageId = (JSON.parse(body) as Message).id;
          const releaseArgs = [claim.conversationId, token, messageId, new Date().toISOString(), '1'];
          await this.#run('release', [k.sched, k.lease, k.queue, k.msgs], releaseArgs).catch(() => undefined);
        }
        throw err;
      })) as CompleteReply;
      if (reply[0] === 0) return { completed: false, notify: false, next: null };
      if (reply[0] === 2) this.#ring();
      const result: CompleteResult = {
        completed: true,
        notify: reply[1] === 1,
        next: reply[0] === 3 ? toClaim(reply[2]) : null,
      };
      const recorded = reply[3];
      if (!drafts || !recorded) return result;
      if (recorded[0] === 'dup' || recorded[0] === 'again') {
        const ids = JSON.parse(recorded[1]) as string[];
        const stored = await this.#readMessages(k, ids);
        return { ...result, replies: stored, repliesRecorded: recorded[0] === 'again' };
      }
      const [, sessionId, ...seqs] = recorded;
      // Keys in the stored order (seq and sessionId first), so a reply's body is its stored body.
      return {
        ...result,
        replies: drafts.map((d, i) => ({ seq: seqs[i]!, sessionId, ...d })),
        repliesRecorded: true,
      };
    });
  }

  release(claim: Claim): Promise<void> {
    return this.#guard(async () => {
      const k = this.#keys.conversation(claim.conversationId);
      const released = await this.#run(
        'release',
        [k.sched, k.lease, k.queue, k.msgs],
        [claim.conversationId, claim.token, claim.message.id, new Date().toISOString(), ''],
      );
      if (released === 1) this.#ring();
    });
  }

  /**
   * One BLPOP on the doorbell at a time, on a dedicated connection, shared by every waiting caller.
   * Callers settle on their own timers, so an unreachable Redis makes them wait out their timeout
   * rather than spin.
   */
  waitForWork(timeoutMs: number, signal?: AbortSignal): Promise<void> {
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
      this.#waiters.set(done, Date.now() + timeoutMs);
      this.#listen();
    });
  }

  pendingCount(): Promise<number> {
    return this.#guard(async () => {
      const counts = await Promise.all(
        Array.from({ length: this.#keys.partitions }, (_, p) => this.#redis.get(this.#keys.pending(p))),
      );
      return counts.reduce((sum, v) => sum + Math.max(0, Number(v ?? 0)), 0);
    });
  }

  // --- lifecycle ---------------------------------------------------------------------------------

  async ping(): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), PING_TIMEOUT_MS);
    });
    const pong = this.#redis.ping().then(
      (r) => r === 'PONG',
      () => false,
    );
    try {
      return await Promise.race([pong, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#mainWait.close();
    this.#acceptWait.close();
    for (const done of [...this.#waiters.keys()]) done();
    this.#blocker?.disconnect();
    this.#redisBus.close();
    await this.#acceptor.quit().catch(() => this.#acceptor.disconnect());
    await this.#redis.quit().catch(() => this.#redis.disconnect());
  }

  // --- internals ---------------------------------------------------------------------------------

  async #getConversation(id: string): Promise<Conversation | null> {
    return toConversation(await this.#redis.hgetall(this.#keys.conversation(id).conv));
  }

  /** Adds the conversation unless it exists; true when this call created it. */
  async #insertConversation(c: Conversation): Promise<boolean> {
    // Index first: an index entry without its conversation is skipped by lists, whereas a conversation
    // missing from the index could never be listed.
    // Both confirmed by the replicas before the conversation is handed out (a conversation the new
    // master lacks after a failover would refuse its messages as unknown).
    await this.#durableCommands(this.#keys.index, (p) => p.zadd!(this.#keys.index, 0, c.id));
    const created = await this.#durable(
      this.#redis,
      this.#mainWait,
      this.#run,
      'create',
      [this.#keys.conversation(c.id).conv],
      [JSON.stringify(pickConversationDoc(c)), c.createdAt, c.sessionId],
    );
    return created === 1;
  }

  /**
   * One message as stored: its raw fields (the body is the guard of a compare-and-set) and the
   * assembled message.
   */
  async #readStored(
    k: ConversationKeys,
    messageId: string,
  ): Promise<{ body: string; processing: string | null; replyIds: string | null; message: Message } | null> {
    const [body, processing = null, replyIds = null] = await this.#redis.hmget(
      k.msgs,
      messageId,
      `${messageId}:p`,
      `${messageId}:r`,
    );
    if (!body) return null;
    return { body, processing, replyIds, message: assembleMessage(body, processing, replyIds) };
  }

  async #readMessages(k: ConversationKeys, ids: readonly string[]): Promise<Message[]> {
    if (ids.length === 0) return [];
    const values = await this.#redis.hmget(k.msgs, ...ids.flatMap((id) => [id, `${id}:p`, `${id}:r`]));
    const out: Message[] = [];
    for (let i = 0; i < ids.length; i++) {
      const body = values[3 * i];
      if (body) out.push(assembleMessage(body, values[3 * i + 1] ?? null, values[3 * i + 2] ?? null));
    }
    return out;
  }

  #append(conversationId: string, guardId: string, drafts: MessageDraft[], at: string): Promise<AppendReply> {
    const k = this.#keys.conversation(conversationId);
    return this.#durable(
      this.#redis,
      this.#mainWait,
      this.#run,
      'append',
      [k.conv, k.msgs, k.seqidx],
      [
        guardId,
        JSON.stringify(drafts.map((d) => d.id)),
        Date.parse(at),
        at,
        ...drafts.map((d) => JSON.stringify(d)),
      ],
      // Replies to a message are recorded once however often this runs (the guard); plain appends
      // are not, so they are only written when they can be confirmed.
      guardId !== '',
    ) as Promise<AppendReply>;
  }

  /**
   * Runs a script whose effect the gateway acts on (acknowledges, hands to the bot, sends), then `WAIT`s
   * in the same pipeline, so on the same connection and node, until the replicas it needs have it: a
   * write the new master lacks after a failover would be a lost message, a seq given twice or a reply
   * sent twice. Too few confirmations in time: StoreUnavailableError (503 + Retry-After for an accept);
   * the write may still survive, and dedupe, leases and reply guards make the retry safe.
   *
   * While the master is known to have too few replicas online, the write is not sent (nothing is
   * left half-done, and no WAIT holds up the connection), except with `writeWhenShort`: a completion
   * and the replies it records, idempotent steps taken after the bot answered. Those are written
   * without the WAIT and reported unconfirmed, so the caller retries until they are confirmed: a
   * completion the current master has, confirmed or not, is one whose message it will not hand to
   * the bot again as long as that master lives, while one refused outright is asked again after the
   * lease.
   */
  async #durable(
    client: RedisClient,
    wait: ReplicaRequirement,
    run: ScriptRun,
    name: ScriptName,
    keys: readonly string[],
    args: readonly (string | number)[],
    writeWhenShort = false,
  ): Promise<unknown> {
    const needed = wait.required(keys[0]!);
    if (needed === 0) return run(name, keys, args);
    if (wait.short(keys[0]!)) {
      if (!writeWhenShort) throw tooFewReplicas(needed);
      throw new UnconfirmedWriteError(tooFewReplicas(needed), await run(name, keys, args));
    }
    return this.#confirmed(client, wait, keys[0]!, needed, (p) =>
      p[`switchboard_${name}`]!(...keys, ...args),
    );
  }

  /**
   * Plain commands (on the main connection, all on the slot of `key`) whose effect the gateway acts on:
   * sent in one pipeline with the `WAIT` that {@link RedisStore.#durable} adds, when one is needed.
   * Returns the replies of the commands; the first error is thrown.
   */
  async #durableCommands(key: string, build: (p: Pipe) => void): Promise<unknown[]> {
    const needed = this.#mainWait.required(key);
    if (needed > 0 && this.#mainWait.short(key)) throw tooFewReplicas(needed);
    const pipeline = this.#redis.pipeline() as unknown as Pipe;
    build(pipeline);
    if (needed > 0) pipeline.wait(needed, this.#mainWait.timeoutMs);
    const replies = (await pipeline.exec()) ?? [];
    const out = needed > 0 ? replies.slice(0, -1) : replies;
    for (const [err] of replies) if (err) throw err;
    if (needed > 0) this.#checkConfirmed(key, replies[replies.length - 1], needed, this.#mainWait);
    return out.map(([, value]) => value);
  }

  async #confirmed(
    client: RedisClient,
    wait: ReplicaRequirement,
    key: string,
    needed: number,
    build: (p: Pipe) => void,
  ): Promise<unknown> {
    const pipeline = client.pipeline() as unknown as Pipe;
    build(pipeline);
    pipeline.wait(needed, wait.timeoutMs);
    const [write, confirmed] = (await pipeline.exec()) ?? [];
    if (!write) throw new StoreUnavailableError(new Error('Redis pipeline gave no reply'));
    if (write[0]) throw write[0];
    try {
      this.#checkConfirmed(key, confirmed, needed, wait);
    } catch (err) {
      throw err instanceof StoreUnavailableError ? new UnconfirmedWriteError(err, write[1]) : err;
    }
    return write[1];
  }

  #checkConfirmed(
    key: string,
    confirmed: [Error | null, unknown] | undefined,
    needed: number,
    wait: ReplicaRequirement,
  ) {
    if (!confirmed) throw new StoreUnavailableError(new Error('Redis pipeline gave no reply'));
    if (confirmed[0]) throw confirmed[0];
    wait.confirmed(key, Number(confirmed[1]), needed);
    if (Number(confirmed[1]) < needed) {
      throw new StoreUnavailableError(
        new Error(
          `${confirmed[1]} of ${needed} Redis replicas confirmed the write within ${wait.timeoutMs} ms`,
        ),
      );
    }
  }

  async #cas(key: string, checks: string[], sets: string[]): Promise<boolean> {
    const args = [checks.length / 2, ...checks, ...sets];
    return (await this.#durable(this.#redis, this.#mainWait, this.#run, 'cas', [key], args)) === 1;
  }

  /** Runs the claim script on one partition: `share` leases at most (0 only counts). */
  async #claimIn(
    partition: number,
    share: number,
    owner: string,
    leaseMs: number,
    at: string,
  ): Promise<ClaimReply> {
    try {
      return (await this.#durable(
        this.#redis,
        this.#mainWait,
        this.#run,
        'claim',
        [this.#keys.sched(partition), this.#keys.lease(partition), this.#keys.pending(partition)],
        [leaseMs, share, at, this.#keys.tag(partition), `${owner}:${randomUUID()}`],
      )) as ClaimReply;
    } catch (err) {
      // Leases the replicas did not confirm are handed back at once and not counted as deliveries: a
      // message claimed again and again through a failover must not end up set aside as poison, nor
      // wait out a lease that no worker holds.
      if (err instanceof UnconfirmedWriteError) {
        const [, ...tuples] = err.result as ClaimReply;
        await Promise.all(
          tuples.map(([conversationId, token, , body]) => {
            const k = this.#keys.conversation(conversationId);
            const messageId = (JSON.parse(body) as Message).id;
            const args = [conversationId, token, messageId, new Date().toISOString(), '1'];
            return this.#run('release', [k.sched, k.lease, k.queue, k.msgs], args).catch(() => undefined);
          }),
        );
      }
      throw err;
    }
  }

  /** Rings the doorbell; best effort, since a missed ring only delays work until a wait times out. */
  #ring(): void {
    this.#run('ring', [this.#keys.bell], [BELL_CAP]).catch((err: unknown) => {
      this.#logger?.debug({ err }, 'doorbell ring failed');
    });
  }

  #listen(): void {
    if (this.#listening || this.#closed || this.#waiters.size === 0) return;
    this.#listening = true;
    if (!this.#blocker) {
      this.#blocker = duplicateClient(this.#redis, 'blocking');
      watchConnection(this.#blocker, 'blocking', this.#logger);
    }
    const wait = Math.max(...this.#waiters.values()) - Date.now();
    this.#blocker.blpop(this.#keys.bell, Math.max(wait, 10) / 1000).then(
      (popped) => {
        this.#listening = false;
        if (!popped) return this.#listen();
        // Everyone who waited has timed out or aborted meanwhile: pass the ring on, not swallow it.
        if (this.#waiters.size === 0) return this.#ring();
        for (const done of [...this.#waiters.keys()]) done();
      },
      (err: unknown) => {
        this.#listening = false;
        this.#logger?.debug({ err }, 'doorbell wait failed');
      },
    );
  }
}

class RedisKeyValue implements KeyValue {
  readonly #redis: RedisClient;
  /**
   * Plain writes go out on the auto-pipelined connection: webhook handlers write their indexes (a
   * Slack message's stored copy, a thread) after each accept, independent of other requests' writes,
   * so those of one event-loop turn share one write. A caller still awaits its own write, so a read
   * made after it (on either connection) sees it. Conditional writes and deletes stay on the main one.
   */
  readonly #writer: RedisClient;
  readonly #keys: KeyLayout;

  constructor(redis: RedisClient, writer: RedisClient, keys: KeyLayout) {
    this.#redis = redis;
    this.#writer = writer;
    this.#keys = keys;
  }

  get(key: string): Promise<string | null> {
    return guard(() => this.#redis.get(this.#keys.kv(key)));
  }

  set(key: string, value: string, ttlS?: number): Promise<void> {
    return guard(async () => {
      if (ttlS === undefined) await this.#writer.set(this.#keys.kv(key), value);
      else await this.#writer.set(this.#keys.kv(key), value, 'PX', Math.max(1, Math.round(ttlS * 1000)));
    });
  }

  setIfAbsent(key: string, value: string, ttlS?: number): Promise<boolean> {
    return guard(async () => {
      const k = this.#keys.kv(key);
      const r =
        ttlS === undefined
          ? await this.#redis.set(k, value, 'NX')
          : await this.#redis.set(k, value, 'PX', Math.max(1, Math.round(ttlS * 1000)), 'NX');
      return r === 'OK';
    });
  }

  delete(key: string): Promise<void> {
    return guard(async () => {
      await this.#redis.del(this.#keys.kv(key));
    });
  }
}

/** Pub/sub on a dedicated subscriber connection (ioredis resubscribes it after a reconnect). */
class RedisBus implements Bus {
  readonly #redis: RedisClient;
  /**
   * Publishes go out on the auto-pipelined connection: one per accepted message (the console feed),
   * fire-and-forget and independent of each other, so those of one event-loop turn share one write.
   */
  readonly #publisher: RedisClient;
  readonly #keys: KeyLayout;
  readonly #logger: Logger | undefined;
  #subscriber: RedisClient | null = null;
  readonly #channels = new Map<
    string,
    { handlers: Set<(payload: string) => void>; subscribed: Promise<unknown> }
  >();

  constructor(redis: RedisClient, publisher: RedisClient, keys: KeyLayout, logger: Logger | undefined) {
    this.#redis = redis;
    this.#publisher = publisher;
    this.#keys = keys;
    this.#logger = logger;
  }

  publish(topic: string, payload: string): Promise<void> {
    return guard(async () => {
      await this.#publisher.publish(this.#keys.bus(topic), payload);
    });
  }

  subscribe(topic: string, handler: (payload: string) => void): Promise<() => Promise<void>> {
    return guard(async () => {
      const channel = this.#keys.bus(topic);
      const sub = this.#connection();
      let entry = this.#channels.get(channel);
      if (!entry) {
        entry = { handlers: new Set(), subscribed: sub.subscribe(channel) };
        this.#channels.set(channel, entry);
      }
      const current = entry;
      // Wrapped so the same handler subscribed twice is two subscriptions.
      const listener = (payload: string) => handler(payload);
      current.handlers.add(listener);
      try {
        await current.subscribed;
      } catch (err) {
        current.handlers.delete(listener);
        if (this.#channels.get(channel) === current && current.handlers.size === 0)
          this.#channels.delete(channel);
        throw err;
      }
      return async () => {
        current.handlers.delete(listener);
        if (current.handlers.size > 0 || this.#channels.get(channel) !== current) return;
        this.#channels.delete(channel);
        await sub
          .unsubscribe(channel)
          .catch((err: unknown) => this.#logger?.debug({ err }, 'unsubscribe failed'));
      };
    });
  }

  close(): void {
    this.#subscriber?.disconnect();
    this.#channels.clear();
  }

  #connection(): RedisClient {
    if (this.#subscriber) return this.#subscriber;
    const sub = duplicateClient(this.#redis, 'subscriber');
    watchConnection(sub, 'subscriber', this.#logger);
    sub.on('message', (channel: string, payload: string) => {
      for (const h of this.#channels.get(channel)?.handlers ?? []) {
        try {
          h(payload);
        } catch (err) {
          this.#logger?.error({ err, channel }, 'bus handler failed');
        }
      }
    });
    this.#subscriber = sub;
    return sub;
  }
}
