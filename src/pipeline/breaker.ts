/**
 * @module A consecutive-failure circuit breaker. Closed: calls pass. After `threshold` consecutive
 * failures it opens: calls fail fast for `cooldownMs`. Then one trial call is let through (half-open);
 * its success closes the breaker, its failure opens it again.
 */

export type BreakerState = 'closed' | 'open' | 'half-open';

export class CircuitBreaker {
  #threshold: number;
  #cooldownMs: number;
  readonly #now: () => number;
  #failures = 0;
  #openedAt = 0;
  #state: BreakerState = 'closed';
  #trialInFlight = false;

  constructor(opts: { threshold: number; cooldownMs: number; now?: () => number }) {
    assertThreshold(opts.threshold);
    this.#threshold = opts.threshold;
    this.#cooldownMs = opts.cooldownMs;
    this.#now = opts.now ?? Date.now;
  }

  /**
   * Changes the threshold and cooldown while running (the bot configuration, SPEC §10). The count so
   * far is kept: a lower threshold already reached opens the breaker at the next failure; an open
   * breaker's cooldown is measured from when it opened.
   */
  configure(opts: { threshold: number; cooldownMs: number }): void {
    assertThreshold(opts.threshold);
    this.#threshold = opts.threshold;
    this.#cooldownMs = opts.cooldownMs;
  }

  /** Back to closed with no failures counted (a different bot behind the breaker). */
  reset(): void {
    this.#failures = 0;
    this.#trialInFlight = false;
    this.#state = 'closed';
  }

  /** Consecutive failures counted since the last success. */
  get failures(): number {
    return this.#failures;
  }

  get threshold(): number {
    return this.#threshold;
  }

  get cooldownMs(): number {
    return this.#cooldownMs;
  }

  /** When the breaker last opened (ms since the epoch), or null while closed. */
  get openedAt(): number | null {
    return this.#state === 'closed' ? null : this.#openedAt;
  }

  get state(): BreakerState {
    if (this.#state === 'open' && this.#now() - this.#openedAt >= this.#cooldownMs) return 'half-open';
    return this.#state;
  }

  /** True when a call may proceed now; in half-open state only one trial at a time. */
  tryAcquire(): boolean {
    const state = this.state;
    if (state === 'closed') return true;
    if (state === 'open') return false;
    if (this.#trialInFlight) return false;
    this.#trialInFlight = true;
    this.#state = 'half-open';
    return true;
  }

  success(): void {
    this.#failures = 0;
    this.#trialInFlight = false;
    this.#state = 'closed';
  }

  failure(): void {
    this.#trialInFlight = false;
    this.#failures += 1;
    if (this.#state === 'half-open' || this.#failures >= this.#threshold) {
      this.#state = 'open';
      this.#openedAt = this.#now();
    }
  }
}

function assertThreshold(threshold: number): void {
  if (!Number.isInteger(threshold) || threshold < 1) {
    throw new TypeError(`Expected \`threshold\` to be a positive integer, got ${threshold}`);
  }
}
