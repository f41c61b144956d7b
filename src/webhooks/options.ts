/**
 * @module Tunables of outbound webhooks, each with the reason for its default. They are injected
 * through `createGateway`'s options (`webhooks`), which is how tests compress a day of retries into a
 * second. Operator settings: `WEBHOOKS_ALLOW_PRIVATE`, and `WEBHOOKS_ENDPOINT_CONCURRENCY`,
 * `WEBHOOKS_BREAKER_THRESHOLD`, `WEBHOOKS_BREAKER_COOLDOWN_MS` (the defaults of the three below, which
 * hold over all processes sharing one Redis: docs/pacing.md).
 */
import type { Resolver } from './ssrf.js';

/**
 * Retry ceilings after attempt 1, 2, …: the wait before retry n is uniform in [0, ceiling n] (full
 * jitter). Ten retries; the expected span is about a day (half the sum, 23.4 h), the longest 46.7 h.
 * After the last one fails the delivery is dead-lettered.
 */
export const RETRY_CEILINGS_MS: readonly number[] = [
  5_000, // 5 s
  30_000, // 30 s
  120_000, // 2 min
  600_000, // 10 min
  1_800_000, // 30 min
  3_600_000, // 1 h
  10_800_000, // 3 h
  21_600_000, // 6 h
  43_200_000, // 12 h
  86_400_000, // 24 h
];

export interface WebhookOptions {
  /**
   * Deadline of one attempt, connect to last byte. Standard Webhooks recommends 15–30 s.
   * @default 15000
   */
  timeoutMs: number;
  /** @default RETRY_CEILINGS_MS */
  retryCeilingsMs: readonly number[];
  /**
   * Consecutive failed attempts to one endpoint that open its circuit breaker: while open, nothing is
   * sent to that endpoint (its deliveries wait, other endpoints are unaffected).
   * @default 5
   */
  breakerThreshold: number;
  /** How long an open breaker waits before one trial attempt. @default 60000 */
  breakerCooldownMs: number;
  /**
   * Attempts in flight to one endpoint (distinct conversations) over all processes, so one slow CRM
   * holds few slots. @default 8
   */
  perEndpointConcurrency: number;
  /** Attempts in flight per process (not shared), over all endpoints. @default 64 */
  maxConcurrency: number;
  /**
   * How often the dispatcher looks for work it was not told about (retries come due on their own
   * timer; this catches deliveries queued by another process). @default 1000
   */
  pollIntervalMs: number;
  /**
   * How long an event whose `seq` leaves a gap in its conversation's lane is held back, in case the
   * earlier event is still on its way to the queue (another process stored it first and is queuing it
   * now). Events that continue their lane are never held. See docs/webhooks-ordering.md. @default 1000
   */
  reorderWindowMs: number;
  /** How long the old secret keeps signing after a rotation. @default 86400000 (24 h) */
  rotationGraceMs: number;
  /** Hostname resolution for the SSRF check (tests inject a rebinding resolver). */
  resolve?: Resolver;
  /** Randomness of the jitter. @default Math.random */
  random: () => number;
}

/**
 * The defaults with `overrides` applied.
 * @throws TypeError naming the first option out of range.
 */
export function webhookOptions(overrides: Partial<WebhookOptions> = {}): WebhookOptions {
  const opts: WebhookOptions = {
    timeoutMs: 15_000,
    retryCeilingsMs: RETRY_CEILINGS_MS,
    breakerThreshold: 5,
    breakerCooldownMs: 60_000,
    perEndpointConcurrency: 8,
    maxConcurrency: 64,
    pollIntervalMs: 1_000,
    rotationGraceMs: 86_400_000,
    reorderWindowMs: 1_000,
    random: Math.random,
    ...overrides,
  };
  for (const key of ['timeoutMs', 'breakerThreshold', 'perEndpointConcurrency', 'maxConcurrency'] as const) {
    if (!Number.isInteger(opts[key]) || opts[key] < 1) {
      throw new TypeError(`Expected \`${key}\` to be a positive integer, got ${opts[key]}`);
    }
  }
  if (!Number.isInteger(opts.reorderWindowMs) || opts.reorderWindowMs < 0) {
    throw new TypeError(
      `Expected \`reorderWindowMs\` to be a non-negative integer, got ${opts.reorderWindowMs}`,
    );
  }
  if (opts.retryCeilingsMs.some((ms) => !(ms >= 0))) {
    throw new TypeError('Expected `retryCeilingsMs` to hold non-negative numbers');
  }
  return opts;
}
