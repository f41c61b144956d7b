/**
 * @module The Redis {@link WebhookRepo}, on its own connection (the store exposes no raw client). All
 * keys of one endpoint share the hash tag `{<prefix>:wh:<id>}`, so every script touches a single
 * Cluster slot; each script passes all its keys through KEYS.
 *
 * ```
 * <p>:wh:endpoints                hash  endpoint id -> endpoint JSON (secrets included)
 * <p>:{<p>:wh:<E>}:due            zset  lane -> when its head may be claimed (ms); leased: lease expiry
 * <p>:{<p>:wh:<E>}:lease          hash  lane -> fencing token of its current lease
 * <p>:{<p>:wh:<E>}:q:<lane>       list  delivery ids of the lane, head first, in seq order
 * <p>:{<p>:wh:<E>}:hw:<lane>      string highest seq that left the lane; expires when the lane idles
 * <p>:{<p>:wh:<E>}:d:<id>         hash  data (immutable JSON), state (JSON), k (place in the lane),
 *                                       h (held back until, ms), t (attempted); expires once finished
 * <p>:{<p>:wh:<E>}:log            zset  delivery ids, score 0 (lexicographic = creation order)
 * <p>:{<p>:wh:<E>}:dead           zset  dead-lettered, not replayed, by time of death (ms)
 * ```
 */
import { randomBytes } from 'node:crypto';
import type { Cluster, Redis } from 'ioredis';
import type { Page } from '../core/store.js';
import { createRedisClient, type RedisClient, waitReady } from '../store/redis/connection.js';
import { defineScripts, loadScripts, type ScriptRun } from '../store/redis/scripts.js';
import {
  type DeliveryClaim,
  type DeliveryData,
  type DeliveryQuery,
  type DeliveryRecord,
  type DeliveryState,
  type DeliveryStatus,
  type EndpointRecord,
  type FinishAction,
  lanePlace,
  logFloor,
  MAX_SCAN,
  RETENTION_MS,
  type WebhookRepo,
} from './repo.js';

/** The repository's scripts (`lua/<name>-<numkeys>.lua`), loaded by the store's loader. */
const SCRIPTS = loadScripts(new URL('./lua/', import.meta.url), {
  enqueue: 6,
  claim: 2,
  finish: 6,
  replay: 8,
});

/**
 * How long a lane's high-water mark outlives the lane's last delivery. After it expires, the next
 * event of that conversation (if its seq leaves a gap) waits out the reorder window once.
 */
const HIGH_WATER_MS = RETENTION_MS.done;

/** Ids are deleted in batches of this size, so one call never blocks Redis for long. */
const BATCH = 500;

class EndpointKeys {
  readonly due: string;
  readonly lease: string;
  readonly log: string;
  readonly dead: string;
  readonly #base: string;
  constructor(prefix: string, endpointId: string) {
    this.#base = `${prefix}:{${prefix}:wh:${endpointId}}`;
    this.due = `${this.#base}:due`;
    this.lease = `${this.#base}:lease`;
    this.log = `${this.#base}:log`;
    this.dead = `${this.#base}:dead`;
  }
  lane(name: string): string {
    return `${this.#base}:q:${name}`;
  }
  highWater(lane: string): string {
    return `${this.#base}:hw:${lane}`;
  }
  /** The prefix of delivery hashes, for scripts that read entries of a lane. */
  get deliveries(): string {
    return `${this.#base}:d:`;
  }
  delivery(id: string): string {
    return `${this.#base}:d:${id}`;
  }
}

export class RedisWebhookRepo implements WebhookRepo {
  readonly kind = 'redis' as const;
  readonly #redis: RedisClient;
  readonly #prefix: string;
  readonly #endpointsKey: string;
  readonly #now: () => number;
  readonly #run: ScriptRun<'enqueue' | 'claim' | 'finish' | 'replay'>;

  private constructor(redis: RedisClient, prefix: string, now: () => number) {
    this.#redis = redis;
    this.#prefix = prefix;
    this.#endpointsKey = `${prefix}:wh:endpoints`;
    this.#now = now;
    this.#run = defineScripts(redis, SCRIPTS, 'switchboard_wh');
  }

  /** Connects to `url` and waits until Redis answers (at most `readyTimeoutMs`). */
  static async connect(
    url: string,
    prefix: string,
    opts: { readyTimeoutMs?: number; now?: () => number } = {},
  ): Promise<RedisWebhookRepo> {
    const redis = createRedisClient(url, { commandTimeoutMs: 5_000, connectTimeoutMs: 5_000 });
    // Connection errors surface on the commands that fail; the event itself needs no handler output.
    redis.on('error', () => undefined);
    try {
      await waitReady(redis, opts.readyTimeoutMs ?? 10_000);
    } catch (err) {
      redis.disconnect();
      throw err;
    }
    return new RedisWebhookRepo(redis, prefix, opts.now ?? Date.now);
  }

  #keys(endpointId: string): EndpointKeys {
    return new EndpointKeys(this.#prefix, endpointId);
  }

  async putEndpoint(endpoint: EndpointRecord): Promise<void> {
    await this.#redis.hset(this.#endpointsKey, endpoint.id, JSON.stringify(endpoint));
  }

  async getEndpoint(id: string): Promise<EndpointRecord | null> {
    const json = await this.#redis.hget(this.#endpointsKey, id);
    return json ? (JSON.parse(json) as EndpointRecord) : null;
  }

  async listEndpoints(): Promise<EndpointRecord[]> {
    const all = await this.#redis.hgetall(this.#endpointsKey);
    return Object.keys(all)
      .sort()
      .map((id) => JSON.parse(all[id]!) as EndpointRecord);
  }

  async deleteEndpoint(id: string): Promise<boolean> {
    const removed = await this.#redis.hdel(this.#endpointsKey, id);
    const k = this.#keys(id);
    // Every non-empty lane is in the schedule, every delivery in the log.
    const lanes = await this.#redis.zrange(k.due, 0, -1);
    for (let i = 0; i < lanes.length; i += BATCH) {
      await this.#redis.unlink(
        ...lanes.slice(i, i + BATCH).flatMap((lane) => [k.lane(lane), k.highWater(lane)]),
      );
    }
    for (;;) {
      const ids = await this.#redis.zrange(k.log, 0, BATCH - 1);
      if (ids.length === 0) break;
      await this.#redis.unlink(...ids.map((d) => k.delivery(d)));
      await this.#redis.zrem(k.log, ...ids);
    }
    await this.#redis.unlink(k.due, k.lease, k.log, k.dead);
    return removed > 0;
  }

  async enqueue(data: DeliveryData, state: DeliveryState, now: number, holdMs = 0): Promise<void> {
    const k = this.#keys(data.endpointId);
    await this.#run(
      'enqueue',
      [k.delivery(data.id), k.lane(data.lane), k.due, k.log, k.lease, k.highWater(data.lane)],
      [
        data.id,
        JSON.stringify(data),
        JSON.stringify(state),
        data.lane,
        now,
        logFloor(this.#now()),
        lanePlace(data) === 'seq' ? data.seq : 'a',
        now + holdMs,
        k.deliveries,
      ],
    );
  }

  async claim(
    endpointId: string,
    max: number,
    now: number,
    leaseUntil: number,
  ): Promise<{ claims: DeliveryClaim[]; nextDueAt: number | null }> {
    const k = this.#keys(endpointId);
    const reply = (await this.#run(
      'claim',
      [k.due, k.lease],
      [now, leaseUntil, max, `${randomBytes(6).toString('hex')}.`],
    )) as Array<string | null>;
    const nextDueAt = reply[0] ? Number(reply[0]) : null;
    const leased: Array<{ lane: string; token: string }> = [];
    for (let i = 1; i + 1 < reply.length; i += 2) leased.push({ lane: reply[i]!, token: reply[i + 1]! });
    if (leased.length === 0) return { claims: [], nextDueAt };

    // The lanes are leased to this call now, so reading their heads needs no atomicity.
    const heads = await Promise.all(leased.map(({ lane }) => this.#redis.lindex(k.lane(lane), 0)));
    const claims: DeliveryClaim[] = [];
    for (const [i, { lane, token }] of leased.entries()) {
      const head = heads[i];
      const record = head ? await this.#record(k, head) : null;
      const claim: DeliveryClaim = {
        endpointId,
        lane,
        token,
        delivery: record ?? ({ id: head ?? '' } as DeliveryRecord),
      };
      if (record) {
        claims.push(claim);
      } else if (head) {
        // A head without its record (expired by an operator or a bug) cannot be sent: drop it.
        await this.finish(claim, 'done', null, now);
      } else {
        // An empty lane left in the schedule: the finish script clears it.
        await this.finish(claim, 'release', null, now);
      }
    }
    return { claims, nextDueAt };
  }

  async finish(
    claim: DeliveryClaim,
    action: FinishAction,
    state: DeliveryState | null,
    at: number,
  ): Promise<boolean> {
    const k = this.#keys(claim.endpointId);
    const id = claim.delivery.id;
    const retention = action === 'dead' ? RETENTION_MS.dead : RETENTION_MS.done;
    const applied = await this.#run(
      'finish',
      [k.due, k.lease, k.lane(claim.lane), k.delivery(id), k.dead, k.highWater(claim.lane)],
      [
        claim.lane,
        claim.token,
        id,
        action,
        state ? JSON.stringify(state) : '',
        at,
        retention,
        this.#now(),
        k.deliveries,
        HIGH_WATER_MS,
      ],
    );
    return applied === 1;
  }

  async #record(k: EndpointKeys, id: string): Promise<DeliveryRecord | null> {
    const [data, state] = await this.#redis.hmget(k.delivery(id), 'data', 'state');
    if (!data || !state) return null;
    return { ...(JSON.parse(data) as DeliveryData), state: JSON.parse(state) as DeliveryState };
  }

  async getDelivery(endpointId: string, id: string): Promise<DeliveryRecord | null> {
    return this.#record(this.#keys(endpointId), id);
  }

  async listDeliveries(endpointId: string, query: DeliveryQuery): Promise<Page<DeliveryRecord>> {
    const k = this.#keys(endpointId);
    const asc = query.order === 'asc';
    const items: DeliveryRecord[] = [];
    let position = query.cursor === undefined ? (asc ? '-' : '+') : `(${query.cursor}`;
    let scanned = 0;
    let exhausted = false;
    let last: string | undefined;
    while (items.length < query.take && scanned < MAX_SCAN) {
      const want = Math.min(query.take - items.length + (query.status ? 50 : 1), MAX_SCAN - scanned);
      const ids = asc
        ? await this.#redis.zrangebylex(k.log, position, '+', 'LIMIT', 0, want)
        : await this.#redis.zrevrangebylex(k.log, position, '-', 'LIMIT', 0, want);
      if (ids.length === 0) {
        exhausted = true;
        break;
      }
      const pipeline = this.#redis.pipeline();
      for (const id of ids) pipeline.hmget(k.delivery(id), 'data', 'state');
      const rows = (await pipeline.exec()) ?? [];
      const expired: string[] = [];
      for (const [i, id] of ids.entries()) {
        if (items.length >= query.take) break;
        scanned += 1;
        last = id;
        const [data, state] = (rows[i]?.[1] as [string | null, string | null] | undefined) ?? [null, null];
        if (!data || !state) {
          expired.push(id);
          continue;
        }
        const record = { ...(JSON.parse(data) as DeliveryData), state: JSON.parse(state) as DeliveryState };
        if (!query.status || record.state.status === query.status) items.push(record);
      }
      // Finished deliveries expire on their own; their log entries are pruned as they are met.
      if (expired.length > 0) await this.#redis.zrem(k.log, ...expired);
      if (ids.length < want && items.length < query.take) {
        exhausted = true;
        break;
      }
      position = `(${last}`;
    }
    if (exhausted || last === undefined) return { items, cursor: null };
    // Whether anything follows the last entry looked at.
    const next = asc
      ? await this.#redis.zrangebylex(k.log, `(${last}`, '+', 'LIMIT', 0, 1)
      : await this.#redis.zrevrangebylex(k.log, `(${last}`, '-', 'LIMIT', 0, 1);
    return { items, cursor: next.length > 0 ? last : null };
  }

  async deadSince(endpointId: string, since: number, limit: number): Promise<DeliveryRecord[]> {
    const k = this.#keys(endpointId);
    const ids = await this.#redis.zrangebyscore(k.dead, since, '+inf', 'LIMIT', 0, limit);
    const out: DeliveryRecord[] = [];
    for (const id of ids) {
      const record = await this.#record(k, id);
      if (record) out.push(record);
      else await this.#redis.zrem(k.dead, id);
    }
    return out.sort((a, b) => (a.id < b.id ? -1 : 1));
  }

  async replay(
    originalId: string,
    copy: DeliveryData,
    state: DeliveryState,
    now: number,
    again = false,
  ): Promise<{ id: string; created: boolean } | { conflict: DeliveryStatus } | null> {
    const k = this.#keys(copy.endpointId);
    const reply = (await this.#run(
      'replay',
      [
        k.delivery(originalId),
        k.delivery(copy.id),
        k.lane(copy.lane),
        k.due,
        k.log,
        k.lease,
        k.dead,
        k.highWater(copy.lane),
      ],
      [
        originalId,
        copy.id,
        JSON.stringify(copy),
        JSON.stringify(state),
        copy.lane,
        now,
        new Date(now).toISOString(),
        logFloor(this.#now()),
        k.deliveries,
        again ? '1' : '',
      ],
    )) as [number, string?];
    if (reply[0] === -1) return null;
    if (reply[0] === -2) return { conflict: reply[1] as DeliveryStatus };
    return { id: reply[1]!, created: reply[0] === 1 };
  }

  async markReplayed(endpointId: string, id: string, state: DeliveryState): Promise<void> {
    const k = this.#keys(endpointId);
    await this.#redis.multi().hset(k.delivery(id), 'state', JSON.stringify(state)).zrem(k.dead, id).exec();
  }

  async close(): Promise<void> {
    await (this.#redis as Redis | Cluster).quit().catch(() => this.#redis.disconnect());
  }
}
