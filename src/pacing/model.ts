/**
 * @module What the pacing room offers: a rate gate (the next send slot of a key), a concurrency limit
 * with leases, and circuit breaker state per key. Each has a Redis form shared by every process on one
 * Redis and an in-memory twin for the embedded backend; both behave alike (one conformance suite).
 */

/** Spaces sends per key: one slot every `intervalMs`, reserved atomically across processes. */
export interface RateGate {
  /**
   * Reserves the key's next free slot, at least `intervalMs` after the slot reserved before it, and
   * resolves with how long the caller must wait for it (0 when it is free now).
   */
  reserve(key: string, intervalMs: number): Promise<number>;
  /** Keeps the key closed until `untilMs` (ms since the epoch, this process's clock): a `Retry-After`. */
  defer(key: string, untilMs: number): Promise<void>;
}

/** A slot held under a concurrency limit; given back with {@link ConcurrencyLimit.release}. */
export interface Lease {
  readonly key: string;
  readonly id: string;
}

/**
 * At most `limit` holders of a key at once over all processes. A lease lives `leaseTtlMs` and the
 * holder renews it while it holds it, so the slots of a process that died come free on their own.
 */
export interface ConcurrencyLimit {
  /** Takes up to `want` of the key's free slots; resolves with the leases granted (maybe none). */
  acquire(key: string, limit: number, want: number): Promise<Lease[]>;
  /**
   * Takes up to `want` slots behind the key's circuit breaker (the {@link SharedBreakers} of the same
   * pacing), in one atomic step: nothing while it is open; in half-open state one slot, which is the
   * trial, and only once no slot of the key is held anywhere.
   */
  take(key: string, limit: number, want: number, trialTtlMs: number): Promise<Take>;
  release(lease: Lease): Promise<void>;
  /** Stops renewing (shutdown); leases still held expire on their own. */
  close(): void;
}

export type BreakerState = 'closed' | 'open' | 'half-open';

/** What {@link ConcurrencyLimit.take} decided. */
export type Take =
  /**
   * Closed: the slots granted (none when all are held). Trial: the caller holds the one trial with
   * its one lease; with no lease, slots are still held and nobody got the trial (look again soon).
   */
  | { state: 'closed' | 'trial'; leases: Lease[] }
  /** As in {@link Admission}: the breaker is open, or another caller runs the trial. */
  | { state: 'open'; retryInMs: number; trialElsewhere?: true };

/** What {@link SharedBreakers.admit} decided. */
export type Admission =
  | { state: 'closed' }
  /**
   * Open: send nothing; look again in `retryInMs` (the rest of the cooldown). With `trialElsewhere`
   * the cooldown is over but another caller holds the trial; `retryInMs` is then the most it can take.
   */
  | { state: 'open'; retryInMs: number; trialElsewhere?: true }
  /** The cooldown is over and this caller holds the one trial over all processes. */
  | { state: 'trial' };

export interface BreakerSettings {
  /** Consecutive failures that open the breaker. */
  threshold: number;
  /** How long it stays open before one trial. */
  cooldownMs: number;
}

/**
 * A consecutive-failure circuit breaker per key whose state (failures, open-until, the half-open
 * trial) is shared: once one process finds the target dead, every process stops sending to it.
 */
export interface SharedBreakers {
  /**
   * May the caller send now? In half-open state exactly one caller over all processes gets `trial`
   * (it holds the trial for `trialTtlMs` at most, so a crashed trial does not keep the key shut).
   */
  admit(key: string, trialTtlMs: number): Promise<Admission>;
  /** Gives back a trial that was not used (nothing was due). */
  cancelTrial(key: string): Promise<void>;
  /** A success: closed, failures forgotten. */
  success(key: string): Promise<void>;
  /** A failure; resolves with the state after it. */
  failure(key: string, settings: BreakerSettings): Promise<BreakerState>;
  /** The state now, for metrics and tests. */
  state(key: string): Promise<BreakerState>;
}

/** The interval of a rate given per second: 80/s → 12.5 ms. */
export function perSecond(rate: number): number {
  if (!(rate > 0)) throw new TypeError(`Expected a rate above 0 per second, got ${rate}`);
  return 1_000 / rate;
}
