/**
 * @module The delivery loop. It never runs on the inbound path: the event listener only enqueues, and
 * this loop claims due lane heads endpoint by endpoint and sends them in parallel, within a
 * per-endpoint concurrency limit held over all processes (leases in the pacing room), a per-process
 * limit, and behind a per-endpoint circuit breaker whose state every process shares: once one process
 * finds an endpoint dead, none sends to it until the cooldown's single trial. A dead or slow endpoint
 * therefore holds at most its own slots and never delays another endpoint.
 *
 * Outcomes: 2xx → succeeded; 410 → dead-lettered and the endpoint disabled; anything else → retried
 * after a full-jitter wait (honouring a longer `Retry-After`) until the ceilings run out, then
 * dead-lettered. While a head waits for its retry, later events of the same conversation wait too.
 */
import type { Logger } from 'pino';
import {
  type ConcurrencyLimit,
  type Lease,
  MemoryBreakers,
  MemoryConcurrency,
  type SharedBreakers,
} from '../pacing/index.js';
import { traceparentIn } from '../tracing/index.js';
import type { WebhookOptions } from './options.js';
import type { DeliveryClaim, DeliveryState, EndpointRecord, FinishAction, WebhookRepo } from './repo.js';
import { type AttemptOutcome, sendAttempt } from './sender.js';
import { signatureHeaders } from './signing.js';

/** What the dispatcher needs from the service that owns the endpoints. */
export interface EndpointSource {
  /** The current endpoints (cached). */
  endpoints(): Promise<readonly EndpointRecord[]>;
  /** Called after a 410: disable the endpoint. */
  disableGone(endpointId: string): Promise<void>;
}

/** Secrets that sign now: the current one, plus the previous one during its grace period. */
export function signingSecrets(endpoint: EndpointRecord, now: number): string[] {
  const secrets = [endpoint.secret];
  if (
    endpoint.previousSecret &&
    endpoint.previousSecretExpiresAt &&
    Date.parse(endpoint.previousSecretExpiresAt) > now
  ) {
    secrets.push(endpoint.previousSecret);
  }
  return secrets;
}

/** The wait before the next attempt after `attempts` failures; `null` when retries are exhausted. */
export function retryDelay(
  attempts: number,
  ceilings: readonly number[],
  random: () => number,
  retryAfterMs?: number,
): number | null {
  const ceiling = ceilings[attempts - 1];
  if (ceiling === undefined) return null;
  const jittered = Math.floor(random() * ceiling);
  // A receiver that asks for more time gets it, up to the longest ceiling of the schedule.
  const longest = Math.max(...ceilings);
  return retryAfterMs === undefined ? jittered : Math.max(jittered, Math.min(retryAfterMs, longest));
}

/** The pacing key of an endpoint: its concurrency leases and breaker. */
function pacingKey(endpointId: string): string {
  return `wh:${endpointId}`;
}

/** Told of each recorded attempt: its outcome and the endpoint's answer time (null when never sent). */
export type AttemptObserver = (outcome: 'delivered' | 'failed' | 'dead', latencyMs: number | null) => void;

export class Dispatcher {
  readonly #repo: WebhookRepo;
  readonly #source: EndpointSource;
  readonly #opts: WebhookOptions;
  readonly #allowPrivate: boolean;
  readonly #logger: Logger;
  readonly #onAttempt: AttemptObserver | undefined;
  readonly #limits: ConcurrencyLimit;
  readonly #breakers: SharedBreakers;
  /** Endpoints seen in the last round, to forget the breakers of deleted ones. */
  #known = new Set<string>();
  /** Endpoints whose breaker was open (or in another process's trial) in the last round. */
  #open = new Set<string>();
  /** Endpoints known open until then (ms), so rounds skip them without asking Redis. */
  readonly #skipUntil = new Map<string, number>();
  /** Endpoints that had nothing due at their last claim, until their next due time. */
  readonly #idleUntil = new Map<string, number>();
  readonly #inflight = new Map<string, number>();
  readonly #attempts = new Set<Promise<void>>();
  readonly #abort = new AbortController();
  #total = 0;
  #running = false;
  #loop: Promise<void> | null = null;
  #wake: (() => void) | null = null;
  #woken = false;
  #lastLoopError = 0;

  constructor(deps: {
    repo: WebhookRepo;
    source: EndpointSource;
    options: WebhookOptions;
    allowPrivate: boolean;
    logger: Logger;
    onAttempt?: AttemptObserver;
    /** Where the per-endpoint limit and breakers are kept. @default in memory, this process only */
    pacing?: { limits: ConcurrencyLimit; breakers: SharedBreakers };
  }) {
    const breakers = new MemoryBreakers();
    this.#limits = deps.pacing?.limits ?? new MemoryConcurrency(breakers);
    this.#breakers = deps.pacing?.breakers ?? breakers;
    this.#onAttempt = deps.onAttempt;
    this.#repo = deps.repo;
    this.#source = deps.source;
    this.#opts = deps.options;
    this.#allowPrivate = deps.allowPrivate;
    this.#logger = deps.logger;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#loop = this.#run();
  }

  /** Asks the loop to look for work now (a delivery was queued or replayed): at every endpoint. */
  wake(): void {
    this.#idleUntil.clear();
    this.#nudge();
  }

  /** Asks the loop for a round without forgetting which endpoints had nothing due (a slot freed). */
  #nudge(): void {
    this.#woken = true;
    this.#wake?.();
  }

  /**
   * Stops claiming, lets attempts in flight finish for up to `graceMs`, then aborts the rest and hands
   * their deliveries back unchanged, so another process (or the next start) sends them.
   */
  async stop(graceMs: number): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    this.wake();
    await this.#loop;
    const all = Promise.allSettled([...this.#attempts]);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([all, new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)))]);
    clearTimeout(timer);
    this.#abort.abort();
    await all;
  }

  /** Endpoints whose breaker this process saw open in its last round (the metrics gauge). */
  get openBreakers(): number {
    return this.#open.size;
  }

  async #run(): Promise<void> {
    while (this.#running) {
      this.#woken = false;
      let nextAt = Date.now() + this.#opts.pollIntervalMs;
      try {
        nextAt = Math.min(nextAt, await this.#claimRound());
      } catch (err) {
        // Storage trouble: log at most every 10 s and keep polling; nothing is lost, work stays queued.
        if (Date.now() - this.#lastLoopError > 10_000) {
          this.#lastLoopError = Date.now();
          this.#logger.error({ err }, 'webhook dispatcher could not claim deliveries');
        }
      }
      if (!this.#running || this.#woken) continue;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(
          () => {
            // A poll (or a retry come due): look at every endpoint again, for work queued elsewhere.
            this.#idleUntil.clear();
            resolve();
          },
          Math.max(0, nextAt - Date.now()),
        );
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = null;
    }
  }

  /** One pass over the endpoints; returns the earliest time more work is known to come due. */
  async #claimRound(): Promise<number> {
    let nextAt = Number.POSITIVE_INFINITY;
    const endpoints = await this.#source.endpoints();
    const known = new Set<string>();
    for (const endpoint of endpoints) {
      known.add(endpoint.id);
      if (!endpoint.enabled || !this.#running) continue;
      const key = pacingKey(endpoint.id);
      // Known open (by this process's last look): no Redis round trips until it may have changed.
      const skipUntil = this.#skipUntil.get(endpoint.id) ?? 0;
      if (Date.now() < skipUntil) {
        nextAt = Math.min(nextAt, skipUntil);
        continue;
      }
      // Nothing was due at the last claim: no slots taken and given back until a wake, a poll, or
      // the endpoint's next due time.
      const idleUntil = this.#idleUntil.get(endpoint.id) ?? 0;
      if (Date.now() < idleUntil) {
        nextAt = Math.min(nextAt, idleUntil);
        continue;
      }
      const inflight = this.#inflight.get(endpoint.id) ?? 0;
      const want = Math.min(
        this.#opts.perEndpointConcurrency - inflight,
        this.#opts.maxConcurrency - this.#total,
      );
      if (want <= 0) continue;
      // Slots and the breaker in one step: a slot frees only after its attempt's outcome is on the
      // breaker, so no process starts an attempt on a failure count older than the attempt before.
      // A trial outlives its attempt only when its holder died; then it frees itself.
      const taken = await this.#limits.take(
        key,
        this.#opts.perEndpointConcurrency,
        want,
        this.#opts.timeoutMs + 15_000,
      );
      if (taken.state === 'open') {
        this.#open.add(endpoint.id);
        // Another process's trial may end any moment: look again at the next poll, not its deadline.
        const wait = taken.trialElsewhere
          ? Math.min(taken.retryInMs, this.#opts.pollIntervalMs)
          : taken.retryInMs;
        this.#skipUntil.set(endpoint.id, Date.now() + Math.max(wait, 1));
        nextAt = Math.min(nextAt, Date.now() + Math.max(wait, 1));
        continue;
      }
      this.#open.delete(endpoint.id);
      this.#skipUntil.delete(endpoint.id);
      const { leases } = taken;
      const trial = taken.state === 'trial';
      if (leases.length === 0) {
        // Held by other processes (or, half-open, attempts still in flight), which do not wake this
        // one: look again at the next poll.
        nextAt = Math.min(nextAt, Date.now() + this.#opts.pollIntervalMs);
        continue;
      }
      const giveBack = (ls: readonly Lease[]) => Promise.all(ls.map((l) => this.#limits.release(l)));
      let claimed: Awaited<ReturnType<WebhookRepo['claim']>>;
      try {
        const now = Date.now();
        claimed = await this.#repo.claim(
          endpoint.id,
          leases.length,
          now,
          now + this.#opts.timeoutMs + 15_000,
        );
      } catch (err) {
        await giveBack(leases);
        if (trial) await this.#breakers.cancelTrial(key);
        throw err;
      }
      const { claims, nextDueAt } = claimed;
      if (nextDueAt !== null) nextAt = Math.min(nextAt, nextDueAt);
      if (claims.length === 0) this.#idleUntil.set(endpoint.id, nextDueAt ?? Number.POSITIVE_INFINITY);
      else this.#idleUntil.delete(endpoint.id);
      await giveBack(leases.slice(claims.length));
      if (trial && claims.length === 0) await this.#breakers.cancelTrial(key);
      for (const [i, claim] of claims.entries()) this.#launch(endpoint.id, claim, leases[i]!);
    }
    // Forget the breakers of deleted endpoints.
    for (const id of this.#known) {
      if (!known.has(id)) {
        this.#open.delete(id);
        this.#skipUntil.delete(id);
        this.#idleUntil.delete(id);
        await this.#breakers.success(pacingKey(id));
      }
    }
    this.#known = known;
    return nextAt;
  }

  #launch(endpointId: string, claim: DeliveryClaim, lease: Lease): void {
    this.#inflight.set(endpointId, (this.#inflight.get(endpointId) ?? 0) + 1);
    this.#total += 1;
    const attempt = this.#attempt(claim)
      .catch((err) =>
        this.#logger.error(
          { err, webhookId: endpointId, deliveryId: claim.delivery.id },
          'webhook attempt failed',
        ),
      )
      .finally(async () => {
        this.#inflight.set(endpointId, (this.#inflight.get(endpointId) ?? 1) - 1);
        this.#total -= 1;
        this.#attempts.delete(attempt);
        await this.#limits
          .release(lease)
          .catch((err) =>
            this.#logger.warn({ err, webhookId: endpointId }, 'webhook slot not given back; it expires'),
          );
        // Its outcome may have made work due (a retry, the lane's next event) or changed the breaker.
        this.#idleUntil.delete(endpointId);
        this.#skipUntil.delete(endpointId);
        this.#nudge();
      });
    this.#attempts.add(attempt);
  }

  /** Records an attempt's outcome on the endpoint's shared breaker; trouble there never loses the outcome. */
  async #record(endpointId: string, ok: boolean): Promise<void> {
    const key = pacingKey(endpointId);
    try {
      if (ok) await this.#breakers.success(key);
      else {
        await this.#breakers.failure(key, {
          threshold: this.#opts.breakerThreshold,
          cooldownMs: this.#opts.breakerCooldownMs,
        });
      }
    } catch (err) {
      this.#logger.warn({ err, webhookId: endpointId }, 'webhook breaker not updated');
    }
  }

  async #attempt(claim: DeliveryClaim): Promise<void> {
    const { delivery } = claim;
    const endpoint = (await this.#source.endpoints()).find((e) => e.id === claim.endpointId);
    if (!endpoint?.enabled) {
      // Deleted or disabled since the claim: hand the head back untouched.
      await this.#repo.finish(claim, 'release', null, Date.now());
      return;
    }
    const headers: Record<string, string> = {
      ...signatureHeaders(delivery.eventId, delivery.body, signingSecrets(endpoint, Date.now())),
    };
    // SPEC §12: the trace of the event's message, when tracing is on and the message carries one.
    const traceparent = traceparentIn(delivery.body);
    if (traceparent) headers.traceparent = traceparent;
    const outcome = await sendAttempt(endpoint.url, delivery.body, headers, {
      timeoutMs: this.#opts.timeoutMs,
      allowPrivate: this.#allowPrivate,
      resolve: this.#opts.resolve,
      signal: this.#abort.signal,
    });
    if (this.#abort.signal.aborted && outcome.kind === 'failure') {
      await this.#repo.finish(claim, 'release', null, Date.now());
      return;
    }
    await this.#record(endpoint.id, outcome.kind === 'success');

    const { action, state, at } = this.#next(delivery.state, outcome);
    const applied = await this.#repo.finish(claim, action, state, at);
    const log = {
      webhookId: endpoint.id,
      deliveryId: delivery.id,
      eventId: delivery.eventId,
      eventType: delivery.eventType,
      attempt: state.attempts,
      status: outcome.status,
      latencyMs: outcome.latencyMs,
    };
    if (applied)
      this.#onAttempt?.(
        outcome.kind === 'success' ? 'delivered' : action === 'dead' ? 'dead' : 'failed',
        outcome.kind === 'refused' ? null : outcome.latencyMs,
      );
    if (!applied) {
      this.#logger.warn(
        log,
        'webhook attempt outcome not recorded: the lease was lost or the endpoint deleted',
      );
    } else if (outcome.kind === 'success') {
      this.#logger.debug(log, 'webhook delivered');
    } else if (action === 'dead') {
      this.#logger.warn({ ...log, reason: state.lastError }, 'webhook delivery dead-lettered');
    } else {
      this.#logger.info(
        { ...log, reason: state.lastError, nextAttemptAt: state.nextAttemptAt },
        'webhook attempt failed',
      );
    }
    if (outcome.kind === 'gone') await this.#source.disableGone(endpoint.id);
  }

  #next(
    prev: DeliveryState,
    outcome: AttemptOutcome,
  ): { action: FinishAction; state: DeliveryState; at: number } {
    const now = Date.now();
    const nowIso = new Date(now).toISOString();
    const attempts = prev.attempts + 1;
    const base = {
      ...prev,
      attempts,
      responseStatus: outcome.status,
      latencyMs: outcome.kind === 'refused' ? null : outcome.latencyMs,
      updatedAt: nowIso,
    };
    if (outcome.kind === 'success') {
      return {
        action: 'done',
        at: now,
        state: { ...base, status: 'succeeded', lastError: null, nextAttemptAt: null, deliveredAt: nowIso },
      };
    }
    if (outcome.kind === 'gone') {
      return {
        action: 'dead',
        at: now,
        state: {
          ...base,
          status: 'dead',
          lastError: 'HTTP 410 Gone: the endpoint was disabled',
          nextAttemptAt: null,
          deadAt: nowIso,
        },
      };
    }
    const retryAfterMs = outcome.kind === 'failure' ? outcome.retryAfterMs : undefined;
    const delay = retryDelay(attempts, this.#opts.retryCeilingsMs, this.#opts.random, retryAfterMs);
    if (delay === null) {
      return {
        action: 'dead',
        at: now,
        state: { ...base, status: 'dead', lastError: outcome.error, nextAttemptAt: null, deadAt: nowIso },
      };
    }
    return {
      action: 'retry',
      at: now + delay,
      state: {
        ...base,
        status: 'retrying',
        lastError: outcome.error,
        nextAttemptAt: new Date(now + delay).toISOString(),
      },
    };
  }
}
