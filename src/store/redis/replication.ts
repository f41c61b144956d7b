/**
 * @module How many replicas must confirm a write before the gateway acts on it (Redis `WAIT`), per
 * master: docs/replication.md explains why and where.
 *
 * With `REDIS_WAIT_REPLICAS=auto` a write needs one confirmation wherever the master it goes to has a
 * replica, and none where it never had one. "Master" here is the logical master: the Sentinel master
 * group (or the one server of a `redis://` URL) and, on a Cluster, the shard that owns the key's slot,
 * whichever server plays that role right now. Once it has been seen with a replica the requirement
 * stays at one for the life of the process (sticky), through failovers:
 * - a master whose replica was just promoted away reports no replica any more, and acknowledging writes
 *   on it then is exactly how they get lost when it is turned into a replica of the new master;
 * - the newly promoted master has no replica either until the old one has been turned into its replica
 *   and has synced; acknowledging writes on it alone means losing them if it fails next (a second
 *   failover, say on a loaded machine whose sentinels take a slow master for a dead one). So until it
 *   has a replica again, writes answer 503 + Retry-After and the provider retries.
 * A deployment that never had a replica (a single server, a Cluster without replicas) needs none.
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
/** The same while too few are online, so that writes resume soon after a replica is back. */
const SHORT_RECHECK_MS = 500;
const SLOTS = 16_384;

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
    if (close > open + 1) return crc16(Buffer.from(key.slice(open + 1, close))) % SLOTS;
  }
  return crc16(Buffer.from(key)) % SLOTS;
}

/** Parses `INFO replication`: the role, the online replicas and the replication id. */
export function parseReplicationInfo(info: string): { role: string; replicas: number; replid: string } {
  const field = (name: string) => new RegExp(`^${name}:(.*)$`, 'm').exec(info)?.[1]?.trim() ?? '';
  const replicas = [...info.matchAll(/^slave\d+:.*state=online/gm)].length;
  return { role: field('role'), replicas, replid: field('master_replid') };
}

/**
 * What one store has seen of its deployment's replication, shared by all of its connections (they
 * reach the same logical masters, each finding the current server on its own).
 */
export class ReplicationMemory {
  /** Single server or Sentinel group: seen with a replica. */
  replicated = false;
  /** Cluster: the slots whose shard was seen with a replica. */
  readonly slots = new Uint8Array(SLOTS);
}

/** Tracks, for one connection, how many replicas a write on it must wait for. */
export class ReplicaRequirement {
  readonly timeoutMs: number;
  readonly #client: RedisClient;
  readonly #fixed: number | null;
  readonly #logger: Logger | undefined;
  readonly #memory: ReplicationMemory;
  /** Single node or Sentinel: what the connection's current server needs; null until counted. */
  #current: number | null = null;
  /** Single node or Sentinel: replicas online when last counted (INFO, or a WAIT that fell short). */
  #online: number | null = null;
  #timer: NodeJS.Timeout | undefined;
  /** Cluster: masters (address) whose last WAIT fell short, until when they count as short. */
  readonly #shortNodes = new Map<string, number>();
  #closed = false;

  constructor(client: RedisClient, policy: WaitPolicy, memory: ReplicationMemory, logger?: Logger) {
    this.#client = client;
    this.timeoutMs = policy.timeoutMs;
    this.#fixed = policy.replicas === 'auto' ? null : policy.replicas;
    this.#memory = memory;
    this.#logger = logger;
    if (this.#fixed === 0) return;
    if (client.isCluster) {
      // ioredis refreshes its slot table periodically and on redirects: every refresh shows which
      // shards have replicas. CLUSTER SLOTS leaves out replicas that have not received a byte yet (a
      // new cluster before its first write), so CLUSTER NODES is asked too, on a timer.
      client.on('refresh', () => this.#learnSlots());
      this.#schedule(RECHECK_MS);
      return;
    }
    // A reconnect may have reached another server (a failover): count again before trusting the old
    // figure, and meanwhile require what the logical master needs.
    client.on('ready', () => {
      this.#current = null;
      this.#online = null;
      void this.refresh();
    });
    this.#schedule(RECHECK_MS);
  }

  /** Counts the replicas of the connection's server now (single node or Sentinel). */
  async refresh(): Promise<void> {
    if (this.#fixed === 0) return;
    if (this.#client.isCluster) {
      this.#learnSlots();
      try {
        this.#learnNodes(String(await (this.#client as Cluster).cluster('NODES')));
      } catch {
        // Unreachable now: the next tick asks again.
      } finally {
        this.#schedule(RECHECK_MS);
      }
      return;
    }
    try {
      const info = parseReplicationInfo(await (this.#client as Redis).info('replication'));
      if (info.role !== 'master') {
        this.#current = null;
        this.#online = null;
        return;
      }
      if (info.replicas > 0) this.#memory.replicated = true;
      const before = this.#current;
      const wasShort = this.#isShort();
      this.#current = this.#fixed ?? (this.#memory.replicated ? 1 : 0);
      this.#online = info.replicas;
      if (this.#fixed === null && before !== this.#current && (before !== null || this.#current === 0))
        this.#logger?.info({ waitReplicas: this.#current }, 'redis write confirmations required');
      if (this.#isShort() && !wasShort)
        this.#logger?.warn(
          { online: info.replicas, needed: this.#current },
          'too few redis replicas online: writes answer 503 until one is back (REDIS_WAIT_REPLICAS=0 accepts them unreplicated)',
        );
    } catch {
      // Unreachable now: the next ready event or tick counts again; until then the old figure holds.
    } finally {
      this.#schedule(this.#isShort() ? SHORT_RECHECK_MS : RECHECK_MS);
    }
  }

  /**
   * True when a write to `key` cannot be confirmed now: the master it goes to is known to have fewer
   * replicas online than it needs. The write is then not even sent: it would only wait out the WAIT
   * timeout, holding up every command behind it on the connection, and leave an unconfirmed change
   * (a lease no worker holds, a completion to retry) on a master that may yet lose it.
   */
  short(key: string): boolean {
    if (this.#fixed === 0) return false;
    if (!this.#client.isCluster) return this.#isShort();
    // On a Cluster, the master's own recent WAIT answers tell (CLUSTER SLOTS hides replicas that have
    // not received a byte yet, so the slot table cannot): short for a moment after one fell short.
    const master = (this.#client as Cluster).slots[keySlot(key)]?.[0];
    if (master === undefined) return false;
    const until = this.#shortNodes.get(master);
    if (until === undefined) return false;
    if (until > Date.now()) return true;
    this.#shortNodes.delete(master);
    return false;
  }

  /** Takes in what a WAIT after a write to `key` answered: fewer than needed means too few are online. */
  confirmed(key: string, count: number, needed: number): void {
    if (this.#client.isCluster) {
      const master = (this.#client as Cluster).slots[keySlot(key)]?.[0];
      if (master === undefined) return;
      if (count < needed) this.#shortNodes.set(master, Date.now() + SHORT_RECHECK_MS);
      else this.#shortNodes.delete(master);
      return;
    }
    if (count < needed) {
      if (!this.#isShort()) this.#schedule(SHORT_RECHECK_MS);
      this.#online = count;
    } else if (this.#online !== null && this.#online < count) {
      this.#online = count;
    }
  }

  /** The replicas a write to `key` must wait for on this connection. */
  required(key: string): number {
    if (this.#fixed !== null) return this.#fixed;
    // Not counted yet since a reconnect: what the logical master needs (a deployment never seen
    // with a replica needs none on any server; once seen, every server of it needs one).
    if (!this.#client.isCluster) return this.#current ?? (this.#memory.replicated ? 1 : 0);
    const slot = keySlot(key);
    // The slots table lists a master's healthy replicas after it.
    const nodes = (this.#client as Cluster).slots[slot];
    if (nodes && nodes.length > 1) this.#memory.slots[slot] = 1;
    return this.#memory.slots[slot]!;
  }

  close(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#closed = true;
  }

  #isShort(): boolean {
    const needed = this.#fixed ?? this.#current ?? 0;
    return needed > 0 && this.#online !== null && this.#online < needed;
  }

  #schedule(ms: number): void {
    if (this.#closed || this.#fixed === 0) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => void this.refresh(), ms);
    this.#timer.unref();
  }

  /** CLUSTER NODES: the slots of every master that has a replica (any state but failed). */
  #learnNodes(text: string): void {
    const lines = text
      .trim()
      .split('\n')
      .map((line) => line.split(' '));
    const withReplica = new Set(
      lines.filter((f) => /slave|replica/.test(f[2] ?? '') && !/fail/.test(f[2] ?? '')).map((f) => f[3]),
    );
    for (const f of lines) {
      if (!/master/.test(f[2] ?? '') || !withReplica.has(f[0])) continue;
      for (const range of f.slice(8)) {
        if (range.startsWith('[')) continue;
        const [from, to = from] = range.split('-').map(Number);
        for (let slot = from!; slot <= to!; slot++) this.#memory.slots[slot] = 1;
      }
    }
  }

  #learnSlots(): void {
    const table = (this.#client as Cluster).slots;
    for (let s = 0; s < SLOTS; s++) if ((table[s]?.length ?? 0) > 1) this.#memory.slots[s] = 1;
  }
}
