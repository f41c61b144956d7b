/**
 * @module The in-memory {@link WebhookRepo} of the embedded backend: one process, so every method is
 * one synchronous step and needs no locking. Finished deliveries expire after {@link RETENTION_MS};
 * expired ones are swept every {@link SWEEP_EVERY} deliveries of an endpoint, and log entries past
 * the log horizon (`LOG_HORIZON_MS`) are trimmed as new ones arrive.
 */
import type { Page } from '../core/store.js';
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

interface StoredDelivery {
  data: DeliveryData;
  state: DeliveryState;
  expiresAt: number | null;
  /** Its place in the lane (see `lanePlace`). */
  key: number;
  /** Until when (ms) it is held back while it does not continue its lane. */
  holdUntil: number;
  /** An attempt at it was started: nothing queued later goes in front of it. */
  tried: boolean;
}

interface EndpointQueues {
  records: Map<string, StoredDelivery>;
  /** Delivery ids in creation order (ids are time-sortable and made in this process). */
  log: string[];
  lanes: Map<string, string[]>;
  /** Lane -> when its head may next be claimed (ms); a leased lane holds its lease expiry. */
  due: Map<string, number>;
  lease: Map<string, string>;
  /** Dead-lettered, not yet replayed: id -> when it died (ms). */
  dead: Map<string, number>;
  /** Lane -> the highest seq that left it, and until when that is remembered (ms). */
  highWater: Map<string, { seq: number; expiresAt: number }>;
  /** Deliveries queued since the last sweep. */
  writes: number;
}

/** Deliveries queued to one endpoint between two sweeps of its expired records. */
const SWEEP_EVERY = 256;

function emptyQueues(): EndpointQueues {
  return {
    records: new Map(),
    log: [],
    lanes: new Map(),
    due: new Map(),
    lease: new Map(),
    dead: new Map(),
    highWater: new Map(),
    writes: 0,
  };
}

const clone = <T>(value: T): T => structuredClone(value);

/** First index in the sorted `ids` whose id is greater than `id`. */
function upperBound(ids: readonly string[], id: string): number {
  let lo = 0;
  let hi = ids.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (ids[mid]! <= id) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export class MemoryWebhookRepo implements WebhookRepo {
  readonly kind = 'embedded' as const;
  readonly #endpoints = new Map<string, EndpointRecord>();
  readonly #queues = new Map<string, EndpointQueues>();
  readonly #now: () => number;
  #tokens = 0;

  constructor(opts: { now?: () => number } = {}) {
    this.#now = opts.now ?? Date.now;
  }

  async putEndpoint(endpoint: EndpointRecord): Promise<void> {
    this.#endpoints.set(endpoint.id, clone(endpoint));
  }

  async getEndpoint(id: string): Promise<EndpointRecord | null> {
    const endpoint = this.#endpoints.get(id);
    return endpoint ? clone(endpoint) : null;
  }

  async listEndpoints(): Promise<EndpointRecord[]> {
    return [...this.#endpoints.values()].sort((a, b) => (a.id < b.id ? -1 : 1)).map(clone);
  }

  async deleteEndpoint(id: string): Promise<boolean> {
    this.#queues.delete(id);
    return this.#endpoints.delete(id);
  }

  #q(endpointId: string): EndpointQueues {
    let q = this.#queues.get(endpointId);
    if (!q) {
      q = emptyQueues();
      this.#queues.set(endpointId, q);
    }
    return q;
  }

  /** Drops expired records and log entries past the horizon. */
  #sweep(q: EndpointQueues): void {
    const now = this.#now();
    const floor = logFloor(now);
    let old = 0;
    while (old < q.log.length && q.log[old]! < floor) old++;
    for (const id of q.log.splice(0, old)) {
      q.records.delete(id);
      q.dead.delete(id);
    }
    for (const [lane, mark] of q.highWater) if (mark.expiresAt <= now) q.highWater.delete(lane);
    const expired = new Set<string>();
    for (const [id, stored] of q.records) {
      if (stored.expiresAt !== null && stored.expiresAt <= now) expired.add(id);
    }
    if (expired.size === 0) return;
    for (const id of expired) {
      q.records.delete(id);
      q.dead.delete(id);
    }
    q.log = q.log.filter((id) => !expired.has(id));
  }

  async enqueue(data: DeliveryData, state: DeliveryState, now: number, holdMs = 0): Promise<void> {
    this.#put(data, state, now, holdMs);
  }

  /** {@link enqueue} as one synchronous step, for the callers that must not yield in between. */
  #put(data: DeliveryData, state: DeliveryState, now: number, holdMs: number): void {
    const q = this.#q(data.endpointId);
    if (++q.writes >= SWEEP_EVERY) {
      q.writes = 0;
      this.#sweep(q);
    }
    const place = lanePlace(data);
    let lane = q.lanes.get(data.lane);
    if (!lane) {
      lane = [];
      q.lanes.set(data.lane, lane);
    }
    let key = data.seq;
    if (place === 'after') {
      // After everything queued before it: the place of the lane's last entry, or the high-water mark.
      const tail = q.records.get(lane[lane.length - 1] ?? '');
      key = Math.max(this.#highWater(q, data.lane, now), tail?.key ?? 0);
    }
    q.records.set(data.id, {
      data: clone(data),
      state: clone(state),
      expiresAt: null,
      key,
      holdUntil: now + holdMs,
      tried: false,
    });
    const last = q.log[q.log.length - 1];
    if (last === undefined || last < data.id) q.log.push(data.id);
    else q.log.splice(upperBound(q.log, data.id), 0, data.id);
    // Walked from the back, where a new event belongs; never in front of an attempted or leased head.
    let before = lane.length;
    const pinned = q.lease.has(data.lane);
    while (before > 0) {
      const other = q.records.get(lane[before - 1]!);
      if (!other || other.key <= key) break;
      if (before === 1 && (pinned || other.tried)) break;
      before -= 1;
    }
    lane.splice(before, 0, data.id);
    if (before === 0 && !q.lease.has(data.lane)) q.due.set(data.lane, this.#headDue(q, data.lane, now)!);
  }

  /** The highest seq that left the lane (0 when none, or forgotten). */
  #highWater(q: EndpointQueues, lane: string, now: number): number {
    const mark = q.highWater.get(lane);
    return mark && mark.expiresAt > now ? mark.seq : 0;
  }

  /**
   * When the lane's head may be claimed: at once when it continues the lane (its seq at most one past
   * the highest that left it) or was attempted already; otherwise once its hold is over.
   * Undefined for an empty lane.
   */
  #headDue(q: EndpointQueues, lane: string, now: number): number | undefined {
    const head = q.lanes.get(lane)?.[0];
    if (head === undefined) return undefined;
    const stored = q.records.get(head);
    if (!stored || stored.tried) return now;
    return stored.key <= this.#highWater(q, lane, now) + 1 ? now : Math.max(now, stored.holdUntil);
  }

  async claim(
    endpointId: string,
    max: number,
    now: number,
    leaseUntil: number,
  ): Promise<{ claims: DeliveryClaim[]; nextDueAt: number | null }> {
    const q = this.#queues.get(endpointId);
    if (!q) return { claims: [], nextDueAt: null };
    const ready = [...q.due].filter(([, at]) => at <= now).sort((a, b) => a[1] - b[1]);
    const claims: DeliveryClaim[] = [];
    for (const [lane] of ready) {
      if (claims.length >= max) break;
      const head = q.lanes.get(lane)?.[0];
      const stored = head === undefined ? undefined : q.records.get(head);
      if (!stored) {
        q.due.delete(lane);
        q.lanes.delete(lane);
        continue;
      }
      const token = `t${++this.#tokens}`;
      q.due.set(lane, leaseUntil);
      q.lease.set(lane, token);
      claims.push({
        endpointId,
        lane,
        token,
        delivery: { ...clone(stored.data), state: clone(stored.state) },
      });
    }
    let nextDueAt: number | null = null;
    for (const at of q.due.values()) if (nextDueAt === null || at < nextDueAt) nextDueAt = at;
    return { claims, nextDueAt };
  }

  async finish(
    claim: DeliveryClaim,
    action: FinishAction,
    state: DeliveryState | null,
    at: number,
  ): Promise<boolean> {
    const q = this.#queues.get(claim.endpointId);
    if (!q || q.lease.get(claim.lane) !== claim.token) return false;
    q.lease.delete(claim.lane);
    const lane = q.lanes.get(claim.lane) ?? [];
    const now = this.#now();
    const schedule = () => {
      const due = this.#headDue(q, claim.lane, now);
      if (due !== undefined) {
        q.due.set(claim.lane, due);
      } else {
        q.due.delete(claim.lane);
        q.lanes.delete(claim.lane);
      }
    };
    if (lane[0] !== claim.delivery.id) {
      schedule();
      return false;
    }
    const stored = q.records.get(claim.delivery.id);
    if (stored && state) stored.state = clone(state);
    if (action === 'retry' || action === 'release') {
      if (stored) stored.tried = true;
      q.due.set(claim.lane, at);
      return true;
    }
    lane.shift();
    if (stored) {
      stored.expiresAt = now + RETENTION_MS[action];
      const seq = Math.max(this.#highWater(q, claim.lane, now), stored.key);
      q.highWater.set(claim.lane, { seq, expiresAt: now + RETENTION_MS.done });
    }
    if (action === 'dead') q.dead.set(claim.delivery.id, now);
    schedule();
    return true;
  }

  /** The record, or undefined once expired (expired ones are dropped on the way). */
  #live(q: EndpointQueues, id: string): StoredDelivery | undefined {
    const stored = q.records.get(id);
    if (stored?.expiresAt != null && stored.expiresAt <= this.#now()) {
      q.records.delete(id);
      q.dead.delete(id);
      q.log.splice(upperBound(q.log, id) - 1, 1);
      return undefined;
    }
    return stored;
  }

  async getDelivery(endpointId: string, id: string): Promise<DeliveryRecord | null> {
    const q = this.#queues.get(endpointId);
    const stored = q && this.#live(q, id);
    return stored ? { ...clone(stored.data), state: clone(stored.state) } : null;
  }

  async listDeliveries(endpointId: string, query: DeliveryQuery): Promise<Page<DeliveryRecord>> {
    const q = this.#queues.get(endpointId);
    if (!q) return { items: [], cursor: null };
    const asc = query.order === 'asc';
    // Walk a snapshot, since expired entries are removed from the log while walking.
    const ids = asc ? [...q.log] : [...q.log].reverse();
    let start = 0;
    const { cursor } = query;
    if (cursor !== undefined) {
      start = asc ? upperBound(ids, cursor) : ids.findIndex((id) => id < cursor);
      if (start < 0) start = ids.length;
    }
    const items: DeliveryRecord[] = [];
    let i = start;
    let scanned = 0;
    for (; i < ids.length && items.length < query.take && scanned < MAX_SCAN; i++, scanned++) {
      const stored = this.#live(q, ids[i]!);
      if (!stored || (query.status && stored.state.status !== query.status)) continue;
      items.push({ ...clone(stored.data), state: clone(stored.state) });
    }
    const more = i < ids.length;
    const last = ids[i - 1];
    return { items, cursor: more && last !== undefined ? last : null };
  }

  async deadSince(endpointId: string, since: number, limit: number): Promise<DeliveryRecord[]> {
    const q = this.#queues.get(endpointId);
    if (!q) return [];
    const out: DeliveryRecord[] = [];
    for (const [id, at] of q.dead) {
      if (at < since) continue;
      const stored = this.#live(q, id);
      if (stored) out.push({ ...clone(stored.data), state: clone(stored.state) });
    }
    return out.sort((a, b) => (a.id < b.id ? -1 : 1)).slice(0, limit);
  }

  async replay(
    originalId: string,
    copy: DeliveryData,
    state: DeliveryState,
    now: number,
    again = false,
  ): Promise<{ id: string; created: boolean } | { conflict: DeliveryStatus } | null> {
    const q = this.#queues.get(copy.endpointId);
    const original = q && this.#live(q, originalId);
    if (!q || !original) return null;
    const status = original.state.status;
    if (status === 'pending' || status === 'retrying') return { conflict: status };
    const previous = original.state.replayedBy;
    const latest = previous === null ? undefined : this.#live(q, previous);
    if (latest && (!again || ['pending', 'retrying'].includes(latest.state.status))) {
      return { id: latest.data.id, created: false };
    }
    this.#put(copy, state, now, 0);
    original.state = { ...original.state, replayedBy: copy.id, updatedAt: new Date(now).toISOString() };
    q.dead.delete(originalId);
    return { id: copy.id, created: true };
  }

  async markReplayed(endpointId: string, id: string, state: DeliveryState): Promise<void> {
    const q = this.#queues.get(endpointId);
    const stored = q?.records.get(id);
    if (!q || !stored) return;
    stored.state = clone(state);
    q.dead.delete(id);
  }

  async close(): Promise<void> {}
}
