/**
 * @module The Redis key layout. Every conversation belongs to one partition, and all of its keys plus
 * that partition's queue structures share the hash tag `{<prefix>:p<N>}`, so each atomic script touches
 * a single Cluster slot (SPEC §4.7). Cross-partition keys (the conversation index, channelRef mappings,
 * kv, the doorbell, bus channels, the layout marker) have no tag and are only ever written by
 * single-key commands. The claim script builds conversation keys from {@link KeyLayout.tag} itself
 * (which conversations are ready is only known inside it); they share its partition's slot all the same.
 *
 * ```
 * <p>:{<p>:pN}:conv:<id>        hash   doc, updatedAt, sessionId, sessionStartedAt, sessionState,
 *                                       lastMessageAt, lastMessageMs, seq (the seq counter), epoch
 *                                       (replication id of the master that last gave out a seq)
 * <p>:{<p>:pN}:msgs:<id>        hash   <msgId> body JSON; <msgId>:p processing JSON; <msgId>:r reply
 *                                       ids JSON; <msgId>:d delivery (claim) count; <msgId>:s send claim;
 *                                       <msgId>:w someone waits for the outcome (until completed);
 *                                       <msgId>:c id of the completion that finished it
 * <p>:{<p>:pN}:seqidx:<id>      zset   msgId scored by seq
 * <p>:{<p>:pN}:q:<id>           list   pending message ids in seq order; the head is the one leased
 * <p>:{<p>:pN}:dd:<id>:<key>    string dedupe key -> message id, with TTL
 * <p>:{<p>:pN}:sched            zset   conversations with pending messages, scored by the time they are
 *                                       claimable (ms); a leased one is scored by its lease expiry
 * <p>:{<p>:pN}:lease            hash   conversation id -> fencing token of its current lease
 * <p>:{<p>:pN}:pending          string pending (queued, not completed) messages of the partition
 * <p>:convs                     zset   all conversation ids, score 0 (lexicographic = creation order)
 * <p>:ref:<channel>:<ref>       string channelRef -> conversation id
 * <p>:kv:<key>                  string adapter key/value entries
 * <p>:bell                      list   doorbell that blocked workers BLPOP
 * <p>:bus:<topic>               pub/sub channel
 * <p>:layout                    string the partition count the data was written with
 * ```
 */

/** FNV-1a over UTF-16 code units: cheap, stable across processes and versions. */
function hash32(value: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < value.length; i++) {
    h ^= value.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** Keys of one conversation and of its partition's queue. */
export interface ConversationKeys {
  partition: number;
  conv: string;
  msgs: string;
  seqidx: string;
  queue: string;
  sched: string;
  lease: string;
  pending: string;
}

/** Builds every key the Redis store uses from one prefix and partition count. */
export class KeyLayout {
  readonly prefix: string;
  readonly partitions: number;

  constructor(prefix: string, partitions: number) {
    if (!Number.isInteger(partitions) || partitions < 1)
      throw new Error('partitions must be a positive integer');
    this.prefix = prefix;
    this.partitions = partitions;
  }

  /** The partition of a conversation; changing the partition count re-homes every conversation. */
  partitionOf(conversationId: string): number {
    return hash32(conversationId) % this.partitions;
  }

  /** The hash-tagged prefix shared by everything in partition `p`. */
  tag(p: number): string {
    return `${this.prefix}:{${this.prefix}:p${p}}`;
  }

  sched(p: number): string {
    return `${this.tag(p)}:sched`;
  }

  lease(p: number): string {
    return `${this.tag(p)}:lease`;
  }

  pending(p: number): string {
    return `${this.tag(p)}:pending`;
  }

  conversation(id: string): ConversationKeys {
    const partition = this.partitionOf(id);
    const t = this.tag(partition);
    return {
      partition,
      conv: `${t}:conv:${id}`,
      msgs: `${t}:msgs:${id}`,
      seqidx: `${t}:seqidx:${id}`,
      queue: `${t}:q:${id}`,
      sched: this.sched(partition),
      lease: this.lease(partition),
      pending: this.pending(partition),
    };
  }

  dedupe(conversationId: string, dedupeKey: string): string {
    return `${this.tag(this.partitionOf(conversationId))}:dd:${conversationId}:${dedupeKey}`;
  }

  get index(): string {
    return `${this.prefix}:convs`;
  }

  ref(channel: string, channelRef: string): string {
    return `${this.prefix}:ref:${channel}:${channelRef}`;
  }

  kv(key: string): string {
    return `${this.prefix}:kv:${key}`;
  }

  get bell(): string {
    return `${this.prefix}:bell`;
  }

  bus(topic: string): string {
    return `${this.prefix}:bus:${topic}`;
  }

  get layout(): string {
    return `${this.prefix}:layout`;
  }
}
