/**
 * @module The Redis {@link HandoffRepo}, on its own connection (the store exposes no raw client) to
 * the store's Redis and key layout. Each transition is one Lua script over the conversation's hash
 * (the store's record) and its partition's timer set, which share the partition's hash tag, so every
 * script touches a single Cluster slot. Scripts compare the conversation's doc with the one the
 * transition was decided on and never parse it; a changed doc makes the caller decide again.
 *
 * ```
 * <p>:{<p>:pN}:conv:<id>          hash  the store's conversation record (doc carries status, handoff
 *                                       and handoffResume)
 * <p>:{<p>:pN}:handoff:due        zset  conversation id -> when its idle release is due (ms); a
 *                                       claimed timer is moved a retry delay later until released
 * ```
 */
import type { Cluster, Redis } from 'ioredis';
import { extend } from '../core/extend.js';
import type { Conversation } from '../core/model.js';
import { createRedisClient, type RedisClient, waitReady } from '../store/redis/connection.js';
import { KeyLayout } from '../store/redis/keys.js';
import { defineScripts, loadScripts, type ScriptRun } from '../store/redis/scripts.js';
import { type ConversationDoc, pickConversationDoc } from '../store/shared.js';
import { decide, type HandoffCommand } from './machine.js';
import type { ApplyResult, HandoffRepo } from './repo.js';

const SCRIPTS = loadScripts(new URL('./lua/', import.meta.url), { step: 2, leave: 2, due: 1 });
type Script = (typeof SCRIPTS)[number]['name'];

/** Decide-and-write rounds before a conversation that keeps changing is reported as a conflict. */
const ATTEMPTS = 16;

/** The conversation as the store reads it from its hash (see src/store/redis/store.ts). */
function toConversation(h: Record<string, string>): Conversation | null {
  if (h.doc === undefined) return null;
  const doc = JSON.parse(h.doc) as ConversationDoc;
  return extend(doc, {
    handoff: doc.handoff ?? null,
    sessionId: h.sessionId!,
    sessionStartedAt: h.sessionStartedAt!,
    sessionState: JSON.parse(h.sessionState ?? '{}') as Conversation['sessionState'],
    updatedAt: h.updatedAt!,
    lastMessageAt: h.lastMessageAt ?? null,
  });
}

export class RedisHandoffRepo implements HandoffRepo {
  readonly #redis: RedisClient;
  readonly #keys: KeyLayout;
  readonly #run: ScriptRun<Script>;

  constructor(redis: RedisClient, keyPrefix: string, partitions: number) {
    this.#redis = redis;
    this.#keys = new KeyLayout(keyPrefix, partitions);
    this.#run = defineScripts(redis, SCRIPTS, 'switchboard_handoff');
  }

  /** Connects to the store's Redis (same REDIS_URL, key prefix and partition count). */
  static async connect(url: string, keyPrefix: string, partitions: number): Promise<RedisHandoffRepo> {
    const redis = createRedisClient(url, { commandTimeoutMs: 5_000, connectTimeoutMs: 5_000 });
    // Connection errors surface on the commands that fail; the event itself needs no handler output.
    redis.on('error', () => undefined);
    try {
      await waitReady(redis, 10_000);
    } catch (err) {
      redis.disconnect();
      throw err;
    }
    return new RedisHandoffRepo(redis, keyPrefix, partitions);
  }

  #due(partition: number): string {
    return `${this.#keys.tag(partition)}:handoff:due`;
  }

  async apply(conversationId: string, command: HandoffCommand): Promise<ApplyResult> {
    const k = this.#keys.conversation(conversationId);
    const keys = [k.conv, this.#due(k.partition)];
    for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
      const h = await this.#redis.hgetall(k.conv);
      const current = toConversation(h);
      if (!current) return { kind: 'missing' };
      const d = decide(current, command);
      if (d.kind === 'refused') return { kind: 'refused', code: d.code, conversation: current };
      if (d.ends && d.next) {
        const { handoffResume: _filled, ...rest } = d.next;
        const doc = JSON.stringify(pickConversationDoc(rest));
        const reply = (await this.#run('leave', keys, [h.doc!, doc, d.next.updatedAt, conversationId])) as
          | [0]
          | [1, number];
        if (reply[0] === 0) continue;
        const conversation = { ...d.next, handoffResume: { afterSeq: reply[1], at: d.next.updatedAt } };
        return { kind: 'applied', conversation, events: d.events, changed: true };
      }
      if (!d.next && d.due === undefined) {
        return { kind: 'applied', conversation: current, events: [], changed: false };
      }
      const timer = d.due === undefined ? 'keep' : d.due === null ? 'clear' : 'set';
      const applied = await this.#run('step', keys, [
        h.doc!,
        d.next ? JSON.stringify(pickConversationDoc(d.next)) : '',
        d.next?.updatedAt ?? current.updatedAt,
        timer,
        d.due ?? 0,
        conversationId,
      ]);
      if (applied !== 1) continue;
      return d.next
        ? { kind: 'applied', conversation: d.next, events: d.events, changed: true }
        : { kind: 'applied', conversation: current, events: [], changed: false };
    }
    throw new Error(`Conversation ${conversationId} kept changing during a handoff step`);
  }

  async claimDue(max: number, retryMs: number): Promise<string[]> {
    const partitions = Array.from({ length: this.#keys.partitions }, (_, p) => p);
    const claimed = await Promise.all(
      partitions.map((p) => this.#run('due', [this.#due(p)], [max, retryMs]) as Promise<string[]>),
    );
    return claimed.flat().slice(0, max);
  }

  async forget(conversationId: string): Promise<void> {
    await this.#redis.zrem(this.#due(this.#keys.partitionOf(conversationId)), conversationId);
  }

  async close(): Promise<void> {
    await (this.#redis as Redis | Cluster).quit().catch(() => this.#redis.disconnect());
  }
}
