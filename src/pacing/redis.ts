/**
 * @module The Redis forms of the pacing room, on the store's connection and under its key prefix:
 *
 * ```
 * <p>:{<p>:pace:<key>}:r   the key's next free send slot (ms on the Redis clock), expires once passed
 * <p>:{<p>:pace:<key>}:c   leases of the key's concurrency limit: a sorted set, lease id -> expiry
 * <p>:{<p>:pace:<key>}:b   the key's circuit breaker: a hash of failures, open-until and the trial
 * ```
 *
 * Every script touches one key and times everything by the Redis server's clock (`TIME`), so processes
 * whose clocks disagree still keep one spacing. While Redis cannot be reached each form falls back to
 * its in-memory twin: pacing then holds per process, not across processes, and sends go on (see
 * docs/pacing.md for why this fails open). Nothing here outlives a Redis restart but the pacing of the
 * next second, which is what a restart may lose.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { isUnavailableError, type RedisClient } from '../store/redis/connection.js';
import { defineScripts, loadScripts, type ScriptRun } from '../store/redis/scripts.js';
import { MemoryBreakers, MemoryConcurrency, MemoryRateGate } from './memory.js';
import type {
  Admission,
  BreakerSettings,
  BreakerState,
  ConcurrencyLimit,
  Lease,
  RateGate,
  SharedBreakers,
  Take,
} from './model.js';

const SCRIPTS = loadScripts(new URL('./lua/', import.meta.url), {
  reserve: 1,
  defer: 1,
  acquire: 1,
  renew: 1,
  admit: 1,
  failure: 1,
  take: 2,
});
type Script = (typeof SCRIPTS)[number]['name'];

/** How long an idle breaker keeps its failure count. */
const BREAKER_IDLE_MS = 86_400_000;

/** The connection, key layout and the fallback's logging, shared by the three forms. */
export class PacingKeys {
  readonly redis: RedisClient;
  readonly run: ScriptRun<Script>;
  readonly #prefix: string;
  readonly #logger: Logger | undefined;
  #lastWarned = 0;

  constructor(redis: RedisClient, prefix: string, logger?: Logger) {
    this.redis = redis;
    this.#prefix = prefix;
    this.#logger = logger;
    this.run = defineScripts(redis, SCRIPTS, 'switchboard_pace');
  }

  /** The Redis key of `kind` for a pacing key; braces are dropped so the hash tag stays ours. */
  key(key: string, kind: 'r' | 'c' | 'b'): string {
    const k = key.replaceAll(/[{}]/g, '');
    return `${this.#prefix}:{${this.#prefix}:pace:${k}}:${kind}`;
  }

  /** Runs `op` on Redis; when Redis cannot be reached, logs (at most every 10 s) and runs `local`. */
  async orLocal<T>(what: string, op: () => Promise<T>, local: () => T | Promise<T>): Promise<T> {
    try {
      return await op();
    } catch (err) {
      if (!isUnavailableError(err)) throw err;
      if (Date.now() - this.#lastWarned > 10_000) {
        this.#lastWarned = Date.now();
        this.#logger?.warn(
          { err, op: what },
          'Redis unreachable: pacing, concurrency limits and breakers hold per process until it is back',
        );
      }
      return local();
    }
  }
}

export class RedisRateGate implements RateGate {
  readonly #keys: PacingKeys;
  readonly #local: MemoryRateGate;

  constructor(keys: PacingKeys, local = new MemoryRateGate()) {
    this.#keys = keys;
    this.#local = local;
  }

  reserve(key: string, intervalMs: number): Promise<number> {
    return this.#keys.orLocal(
      'reserve',
      async () => Number(await this.#keys.run('reserve', [this.#keys.key(key, 'r')], [intervalMs])),
      () => this.#local.slot(key, intervalMs),
    );
  }

  async defer(key: string, untilMs: number): Promise<void> {
    this.#local.shut(key, untilMs);
    const delay = Math.max(0, untilMs - Date.now());
    await this.#keys.orLocal(
      'defer',
      () => this.#keys.run('defer', [this.#keys.key(key, 'r')], [delay]),
      () => undefined,
    );
  }
}

export interface RedisConcurrencyOptions {
  /** A lease not renewed for this long is free again (its holder died). @default 30000 */
  leaseTtlMs?: number;
  /** How often held leases are renewed. @default a third of the TTL */
  renewEveryMs?: number;
}

export class RedisConcurrency implements ConcurrencyLimit {
  readonly #keys: PacingKeys;
  readonly #local: MemoryConcurrency;
  readonly #ttlMs: number;
  /** Leases held on Redis, by key, for renewal. */
  readonly #held = new Map<string, Set<string>>();
  /** Leases taken from the local twin while Redis was away. */
  readonly #localIds = new Set<string>();
  readonly #owner = randomUUID();
  #seq = 0;
  #timer: NodeJS.Timeout | undefined;

  /** `breakers`: those {@link take} looks behind; their local twin is this one's fallback too. */
  constructor(keys: PacingKeys, opts: RedisConcurrencyOptions = {}, breakers?: RedisBreakers) {
    this.#keys = keys;
    this.#local = new MemoryConcurrency(breakers?.local);
    this.#ttlMs = opts.leaseTtlMs ?? 30_000;
    this.#timer = setInterval(() => void this.renew(), opts.renewEveryMs ?? Math.ceil(this.#ttlMs / 3));
    this.#timer.unref();
  }

  async acquire(key: string, limit: number, want: number): Promise<Lease[]> {
    if (want <= 0) return [];
    const stem = `${this.#owner}:${++this.#seq}`;
    return this.#keys.orLocal(
      'acquire',
      async () => {
        const n = Number(
          await this.#keys.run('acquire', [this.#keys.key(key, 'c')], [limit, want, this.#ttlMs, stem]),
        );
        const leases = this.#hold(key, stem, n);
        return leases;
      },
      () => {
        const leases = this.#local.takeSlots(key, limit, want);
        for (const l of leases) this.#localIds.add(l.id);
        return leases;
      },
    );
  }

  async take(key: string, limit: number, want: number, trialTtlMs: number): Promise<Take> {
    const stem = `${this.#owner}:${++this.#seq}`;
    return this.#keys.orLocal(
      'take',
      async () => {
        const [code, n] = (await this.#keys.run(
          'take',
          [this.#keys.key(key, 'c'), this.#keys.key(key, 'b')],
          [limit, Math.max(0, want), this.#ttlMs, stem, trialTtlMs],
        )) as [number, number];
        if (code === 1) return { state: 'open', retryInMs: Number(n) } as const;
        if (code === 3) return { state: 'open', retryInMs: Number(n), trialElsewhere: true } as const;
        const leases = this.#hold(key, stem, Number(n));
        return { state: code === 2 ? 'trial' : 'closed', leases } as const;
      },
      () => {
        const taken = this.#local.takeNow(key, limit, want, trialTtlMs);
        if (taken.state !== 'open') for (const l of taken.leases) this.#localIds.add(l.id);
        return taken;
      },
    );
  }

  /** Records `n` leases granted under `stem` for renewal. */
  #hold(key: string, stem: string, n: number): Lease[] {
    const leases = Array.from({ length: n }, (_, i) => ({ key, id: `${stem}.${i + 1}` }));
    if (n === 0) return leases;
    let held = this.#held.get(key);
    if (!held) {
      held = new Set();
      this.#held.set(key, held);
    }
    for (const l of leases) held.add(l.id);
    return leases;
  }

  async release(lease: Lease): Promise<void> {
    if (this.#localIds.delete(lease.id)) {
      this.#local.give(lease);
      return;
    }
    const held = this.#held.get(lease.key);
    held?.delete(lease.id);
    if (held?.size === 0) this.#held.delete(lease.key);
    // A lease that cannot be given back now expires on its own.
    await this.#keys.orLocal(
      'release',
      () => this.#keys.redis.zrem(this.#keys.key(lease.key, 'c'), lease.id),
      () => 0,
    );
  }

  /** Renews every lease held (the timer calls this). */
  async renew(): Promise<void> {
    for (const [key, ids] of this.#held) {
      if (ids.size === 0) continue;
      await this.#keys
        .orLocal(
          'renew',
          () => this.#keys.run('renew', [this.#keys.key(key, 'c')], [this.#ttlMs, ...ids]),
          () => 0,
        )
        .catch(() => undefined);
    }
  }

  close(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}

export class RedisBreakers implements SharedBreakers {
  readonly #keys: PacingKeys;
  readonly #local = new MemoryBreakers();

  constructor(keys: PacingKeys) {
    this.#keys = keys;
  }

  /** The in-memory twin used while Redis is away. */
  get local(): MemoryBreakers {
    return this.#local;
  }

  admit(key: string, trialTtlMs: number): Promise<Admission> {
    return this.#keys.orLocal(
      'admit',
      async () => {
        const [code, ms] = (await this.#keys.run('admit', [this.#keys.key(key, 'b')], [trialTtlMs])) as [
          number,
          number?,
        ];
        if (code === 0) return { state: 'closed' } as const;
        if (code === 2) return { state: 'trial' } as const;
        if (code === 3) return { state: 'open', retryInMs: Number(ms), trialElsewhere: true } as const;
        return { state: 'open', retryInMs: Number(ms) } as const;
      },
      () => this.#local.admitNow(key, trialTtlMs),
    );
  }

  async cancelTrial(key: string): Promise<void> {
    await this.#local.cancelTrial(key);
    await this.#keys.orLocal(
      'cancelTrial',
      () => this.#keys.redis.hdel(this.#keys.key(key, 'b'), 'trial'),
      () => 0,
    );
  }

  async success(key: string): Promise<void> {
    await this.#local.success(key);
    await this.#keys.orLocal(
      'success',
      () => this.#keys.redis.del(this.#keys.key(key, 'b')),
      () => 0,
    );
  }

  failure(key: string, settings: BreakerSettings): Promise<BreakerState> {
    return this.#keys.orLocal(
      'failure',
      async () => {
        const open = await this.#keys.run(
          'failure',
          [this.#keys.key(key, 'b')],
          [settings.threshold, settings.cooldownMs, BREAKER_IDLE_MS],
        );
        return Number(open) === 1 ? 'open' : 'closed';
      },
      () => this.#local.failureNow(key, settings),
    );
  }

  state(key: string): Promise<BreakerState> {
    return this.#keys.orLocal(
      'state',
      async () => {
        const open = await this.#keys.redis.hget(this.#keys.key(key, 'b'), 'open');
        if (open === null) return 'closed';
        const [s, us] = await this.#keys.redis.time();
        return Number(s) * 1000 + Number(us) / 1000 < Number(open) ? 'open' : 'half-open';
      },
      () => this.#local.state(key),
    );
  }
}
