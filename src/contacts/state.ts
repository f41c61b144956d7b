/**
 * @module The storage port of contacts: a handful of hashes and sorted sets in one place, read
 * freely and written only through {@link ContactState.apply}, which checks what the caller read and
 * writes everything or nothing. The operations themselves (`repo.ts`) are planned once, in
 * TypeScript, for both backends: in memory for the embedded backend, Redis (`state-redis.ts`, one
 * Lua script, every key in one hash slot) when `REDIS_URL` is set.
 *
 * Keys (relative names):
 * ```
 * c           hash  contact id -> contact JSON
 * idx         zset  contact ids, score 0 (lexicographic = creation order)
 * id          hash  identity key (`<channel>:<address>`, `~` in front when unverified) -> contact id
 * link        hash  verified identifier (`phone:+E164`, `email:<address>`) -> contact id
 * loose       hash  identifier held unverified -> JSON array of the contact ids holding it
 * conv        hash  conversation id -> JSON { contactId, identity, at }
 * cc:<id>     zset  a contact's conversation ids, scored by when they came (ms)
 * sug         hash  `<id> <id>` (sorted) -> suggestion JSON
 * open        hash  contact id -> their conversation in contact scope (CONVERSATION_SCOPE=contact)
 * ```
 */

export type Check = ['h', string, string, string | false] | ['n', string, number];

export type Op =
  | ['hset', string, string, string]
  | ['hdel', string, string]
  | ['zadd', string, number, string]
  | ['zrem', string, string]
  | ['del', string];

export interface ContactState {
  readonly kind: 'embedded' | 'redis';
  hget(key: string, fields: readonly string[]): Promise<(string | null)[]>;
  hgetall(key: string): Promise<Record<string, string>>;
  /** Members with their scores, ascending by score (`rev` descending), `start`..`stop` inclusive. */
  zrange(key: string, start: number, stop: number, rev?: boolean): Promise<string[]>;
  /** Members after `after` (exclusive) in lexicographic order, at most `count`. */
  zrangeAfter(key: string, after: string | null, count: number, rev?: boolean): Promise<string[]>;
  zcard(key: string): Promise<number>;
  /**
   * The conversation's link (field `conversationId` of `conv`) and the contact document (hash `c`)
   * of the link's `contactId`, or of `fallbackId` when there is no link: one read, one round trip.
   */
  linkAndContact(conversationId: string, fallbackId: string | null): Promise<[string | null, string | null]>;
  /** True when every check held and every op was applied; false (nothing written) otherwise. */
  apply(checks: readonly Check[], ops: readonly Op[]): Promise<boolean>;
}
