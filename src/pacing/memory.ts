/**
 * @module The in-memory twins of the pacing room, for the embedded backend (one process) and as the
 * fallback of the Redis forms while Redis cannot be reached. Same semantics as the Lua scripts.
 */
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

/**
 * One slot per key every interval. A slot is reserved synchronously ({@link slot}), so concurrent
 * callers of one key queue behind each other while other keys never wait.
 */
export class MemoryRateGate implements RateGate {
  readonly #next = new Map<string, number>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** Reserves the key's next slot; returns how long the caller must wait for it. */
  slot(key: string, intervalMs: number): number {
    const now = this.#now();
    this.#prune(now);
    const slot = Math.max(now, this.#next.get(key) ?? 0);
    this.#next.set(key, slot + intervalMs);
    return Math.ceil(slot - now);
  }

  async reserve(key: string, intervalMs: number): Promise<number> {
    return this.slot(key, intervalMs);
  }

  /** Keeps the key closed until `untilMs`. */
  shut(key: string, untilMs: number): void {
    this.#next.set(key, Math.max(untilMs, this.#next.get(key) ?? 0));
  }

  async defer(key: string, untilMs: number): Promise<void> {
    this.shut(key, untilMs);
  }

  /** Forgets keys whose slot has passed, so the map does not grow with every key ever used. */
  #prune(now: number): void {
    if (this.#next.size < 1_000) return;
    for (const [key, next] of this.#next) if (next <= now) this.#next.delete(key);
  }
}

let leaseSeq = 0;

/** Counts holders per key in this process; nothing to expire (the count dies with the process). */
export class MemoryConcurrency implements ConcurrencyLimit {
  readonly #held = new Map<string, Set<string>>();
  readonly #breakers: MemoryBreakers;

  /** `breakers`: the ones {@link take} looks behind (those of the same pacing). */
  constructor(breakers: MemoryBreakers = new MemoryBreakers()) {
    this.#breakers = breakers;
  }

  async take(key: string, limit: number, want: number, trialTtlMs: number): Promise<Take> {
    return this.takeNow(key, limit, want, trialTtlMs);
  }

  /** {@link take}, synchronously: the same steps as the take-2 script. */
  takeNow(key: string, limit: number, want: number, trialTtlMs: number): Take {
    const gate = this.#breakers.look(key);
    if (gate.state === 'open') return gate;
    if (gate.state === 'half-open') {
      if (this.held(key) > 0 || limit < 1 || want < 1) return { state: 'trial', leases: [] };
      this.#breakers.startTrial(key, trialTtlMs);
      return { state: 'trial', leases: this.take1(key) };
    }
    return { state: 'closed', leases: this.takeSlots(key, limit, want) };
  }

  take1(key: string): Lease[] {
    return this.takeSlots(key, 1, 1);
  }

  async acquire(key: string, limit: number, want: number): Promise<Lease[]> {
    return this.takeSlots(key, limit, want);
  }

  takeSlots(key: string, limit: number, want: number): Lease[] {
    let held = this.#held.get(key);
    const n = Math.max(0, Math.min(want, limit - (held?.size ?? 0)));
    if (n === 0) return [];
    if (!held) {
      held = new Set();
      this.#held.set(key, held);
    }
    const leases: Lease[] = [];
    for (let i = 0; i < n; i++) {
      const id = `m${++leaseSeq}`;
      held.add(id);
      leases.push({ key, id });
    }
    return leases;
  }

  async release(lease: Lease): Promise<void> {
    this.give(lease);
  }

  give(lease: Lease): void {
    const held = this.#held.get(lease.key);
    if (!held) return;
    held.delete(lease.id);
    if (held.size === 0) this.#held.delete(lease.key);
  }

  /** Holders of a key now (tests). */
  held(key: string): number {
    return this.#held.get(key)?.size ?? 0;
  }

  close(): void {}
}

interface BreakerRecord {
  failures: number;
  /** Open until (ms); undefined while closed. */
  openUntil?: number;
  /** The half-open trial's expiry (ms), while one is under way. */
  trialUntil?: number;
}

/** Breaker state per key in this process. */
export class MemoryBreakers implements SharedBreakers {
  readonly #records = new Map<string, BreakerRecord>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** The breaker without taking anything: closed, open (maybe with a trial elsewhere), or half-open. */
  look(key: string): Admission | { state: 'half-open' } {
    const r = this.#records.get(key);
    if (r?.openUntil === undefined) return { state: 'closed' };
    const now = this.#now();
    if (now < r.openUntil) return { state: 'open', retryInMs: r.openUntil - now };
    if (r.trialUntil !== undefined && now < r.trialUntil) {
      return { state: 'open', retryInMs: r.trialUntil - now, trialElsewhere: true };
    }
    return { state: 'half-open' };
  }

  /** Marks the half-open trial as taken for `trialTtlMs`. */
  startTrial(key: string, trialTtlMs: number): void {
    const r = this.#records.get(key);
    if (r) r.trialUntil = this.#now() + trialTtlMs;
  }

  admitNow(key: string, trialTtlMs: number): Admission {
    const gate = this.look(key);
    if (gate.state !== 'half-open') return gate;
    this.startTrial(key, trialTtlMs);
    return { state: 'trial' };
  }

  async admit(key: string, trialTtlMs: number): Promise<Admission> {
    return this.admitNow(key, trialTtlMs);
  }

  async cancelTrial(key: string): Promise<void> {
    const r = this.#records.get(key);
    if (r) delete r.trialUntil;
  }

  async success(key: string): Promise<void> {
    this.#records.delete(key);
  }

  failureNow(key: string, settings: BreakerSettings): BreakerState {
    let r = this.#records.get(key);
    if (!r) {
      r = { failures: 0 };
      this.#records.set(key, r);
    }
    r.failures += 1;
    // Already open (a failed trial, or an attempt that started before it opened) or the threshold hit.
    if (r.openUntil !== undefined || r.failures >= settings.threshold) {
      r.openUntil = this.#now() + settings.cooldownMs;
      delete r.trialUntil;
      return 'open';
    }
    return 'closed';
  }

  async failure(key: string, settings: BreakerSettings): Promise<BreakerState> {
    return this.failureNow(key, settings);
  }

  async state(key: string): Promise<BreakerState> {
    const r = this.#records.get(key);
    if (r?.openUntil === undefined) return 'closed';
    return this.#now() < r.openUntil ? 'open' : 'half-open';
  }
}
