/**
 * @module How many replicas must confirm a write before the gateway acts on it (Redis `WAIT`), per
 * master: docs/replication.md explains why and where.
 *
 * With `REDIS_WAIT_REPLICAS=auto` a master that has, or once had, a replica needs one confirmation, a
 * master that never had one needs none. "Once had" is what makes a failover safe: a master whose
 * replica was just promoted away reports no replica any more, and acknowledging writes on it then is
 * exactly how they get lost when it is turned into a replica of the new master. So the requirement only
 * goes up for a given master (told apart by its replication id on a single node or Sentinel, by its
 * address on a Cluster); a newly promoted master starts from what it has.
 */
import type { Cluster, Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { RedisClient } from './connection.js';

export interface WaitPolicy {
  /** Replicas that must confirm a write; `auto`: 1 on a master with replicas, 0 on one without. */
  replicas: number | 'auto';
  /** How long a write waits for them (ms). */
  timeoutMs: number;
}

/** How often a single node's or Sentinel master's replicas are counted again. */
const RECHECK_MS = 5_000;

/** CRC16/XMODEM, as Redis Cluster hashes keys to slots. */
function crc16(s: Buffer): number {
  let crc = 0;
  for (const byte of s) {
    crc ^= byte << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}

/** The Cluster slot of a key (its `{hash tag}` when it has a non-empty one). */
export function keySlot(key: string): number {
  const open = key.indexOf('{');
  if (open !== -1) {
    const close = key.indexOf('}', open + 1);
    if (close > open + 1) return crc16(Buffer.from(key.slice(open + 1, close))) % 16_384;
  }
  return crc16(Buffer.from(key)) % 16_384;
}

/** Parses `INFO replication`: the role, the online replicas and the replication id. */
export function parseReplicationInfo(info: string): { role: string; replicas: number; replid: string } {
  const field = (name: string) => new RegExp(`^${name}:(.*)$`, 'm').exec(info)?.[1]?.trim() ?? '';
  const replicas = [...info.matchAll(/^slave\d+:.*state=online/gm)].length;
  return { role: field('role'), replicas, replid: field('master_replid') };
}

/** Tracks, for one connection, how many replicas a write on it must wait for. */
export class ReplicaRequirement {
  readonly timeoutMs: number;
  readonly #client: RedisClient;
  readonly #fixed: number | null;
  readonly #logger: Logger | undefined;
  /** Masters (replication id, or node address on a Cluster) seen with at least one replica. */
  readonly #replicated = new Set<string>();
  /** Single node or Sentinel: what the connection's current server needs; null until counted. */
  #current: number | null = null;
  #timer: NodeJS.Timeout | undefined;

  constructor(client: RedisClient, policy: WaitPolicy, logger?: Logger) {
    this.#client = client;
    this.timeoutMs = policy.timeoutMs;
    this.#fixed = policy.replicas === 'auto' ? null : policy.replicas;
    this.#logger = logger;
    if (this.#fixed !== null || client.isCluster) return;
    // A reconnect may have reached another server (a failover): count again before trusting the old
    // figure, and meanwhile require one confirmation (fail closed).
    client.on('ready', () => {
      this.#current = null;
      void this.refresh();
    });
    this.#timer = setInterval(() => void this.refresh(), RECHECK_MS);
    this.#timer.unref();
  }

  /** Counts the replicas of the connection's server now (single node or Sentinel, auto only). */
  async refresh(): Promise<void> {
    if (this.#fixed !== null || this.#client.isCluster) return;
    try {
      const info = parseReplicationInfo(await (this.#client as Redis).info('replication'));
      if (info.role !== 'master') {
        this.#current = null;
        return;
      }
      if (info.replicas > 0) this.#replicated.add(info.replid);
      const before = this.#current;
      this.#current = this.#replicated.has(info.replid) ? 1 : 0;
      if (before !== this.#current)
        this.#logger?.info({ waitReplicas: this.#current }, 'redis write confirmations required');
    } catch {
      // Unreachable now: the next ready event or tick counts again; until then the old figure holds.
    }
  }

  /** The replicas a write to `key` must wait for on this connection. */
  required(key: string): number {
    if (this.#fixed !== null) return this.#fixed;
    if (!this.#client.isCluster) return this.#current ?? 1;
    const nodes = (this.#client as Cluster).slots[keySlot(key)];
    const master = nodes?.[0];
    if (!master) return 1;
    // The slots table lists a master's healthy replicas after it (a MOVED reply leaves the master alone
    // there until the next refresh, which the remembered set covers).
    if (nodes.length > 1) this.#replicated.add(master);
    return this.#replicated.has(master) ? 1 : 0;
  }

  close(): void {
    clearInterval(this.#timer);
  }
}
