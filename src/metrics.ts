/**
 * @module Prometheus metrics (prom-client), one registry per gateway instance, and who may read them.
 *
 * `GET /metrics` tells an outsider the traffic per channel, the refusals by reason and the queue
 * depth, so it is not for everyone: with `METRICS_TOKEN` set it takes `Authorization: Bearer <token>`
 * (compared in constant time, as API keys are); without one it is open for trying the gateway out, and
 * closed (401) under `NODE_ENV=production`, where forgetting the token must not publish the numbers.
 */
import type { RequestHandler } from 'express';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { GatewayError } from './core/errors.js';
import { apiKeyMatch } from './http/auth.js';

/** Who may read `/metrics`, as decided at start from the settings. */
export type MetricsAccess = 'token' | 'open' | 'closed';

export function metricsAccess(config: { METRICS_TOKEN?: string; NODE_ENV?: string }): MetricsAccess {
  if (config.METRICS_TOKEN) return 'token';
  return config.NODE_ENV === 'production' ? 'closed' : 'open';
}

/** The guard in front of `/metrics` (see the module comment); refusals are 401 problems. */
export function metricsGuard(config: { METRICS_TOKEN?: string; NODE_ENV?: string }): RequestHandler {
  const access = metricsAccess(config);
  const match = config.METRICS_TOKEN ? apiKeyMatch([config.METRICS_TOKEN]) : undefined;
  return function metricsGuardMiddleware(req, res, next) {
    if (access === 'open') {
      next();
      return;
    }
    res.setHeader('WWW-Authenticate', 'Bearer realm="switchboard-metrics"');
    if (access === 'closed') {
      next(
        new GatewayError(
          'GW_ERR_UNAUTHORIZED',
          'Metrics are closed in production until METRICS_TOKEN is set; then send it as `Authorization: Bearer <token>`',
        ),
      );
      return;
    }
    const verdict = match?.(req.get('authorization'));
    if (verdict === 'missing') {
      next(new GatewayError('GW_ERR_UNAUTHORIZED', 'Send METRICS_TOKEN as `Authorization: Bearer <token>`'));
    } else if (verdict === 'invalid') {
      next(new GatewayError('GW_ERR_UNAUTHORIZED', 'The metrics token is not valid'));
    } else next();
  };
}

export function createMetrics(pendingCount: () => Promise<number>) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return {
    registry,
    accepted: new Counter({
      name: 'switchboard_messages_accepted_total',
      help: 'Inbound messages accepted (stored and queued)',
      labelNames: ['channel'] as const,
      registers: [registry],
    }),
    duplicates: new Counter({
      name: 'switchboard_messages_duplicate_total',
      help: 'Inbound messages recognised as duplicates',
      labelNames: ['channel'] as const,
      registers: [registry],
    }),
    rejected: new Counter({
      name: 'switchboard_requests_rejected_total',
      help: 'Provider requests refused (signature, timestamp, malformed)',
      labelNames: ['channel', 'reason'] as const,
      registers: [registry],
    }),
    verificationFailed: new Counter({
      name: 'switchboard_verification_failures_total',
      help: 'Provider requests whose signature did not verify, by mode: refused (enforce) or accepted (report)',
      labelNames: ['channel', 'reason', 'mode'] as const,
      registers: [registry],
    }),
    verificationMode: new Gauge({
      name: 'switchboard_verification_mode',
      help: '1 for the verification mode each provider webhook runs in (SPEC §12: enforce or report)',
      labelNames: ['channel', 'mode'] as const,
      registers: [registry],
    }),
    retentionRuns: new Counter({
      name: 'switchboard_retention_runs_total',
      help: 'Retention job runs (RETENTION_DAYS), by outcome: ran, skipped (another process held the lock), failed',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
    retentionErased: new Counter({
      name: 'switchboard_retention_erased_total',
      help: 'Conversations, and contacts left without one, erased by the retention job',
      labelNames: ['kind'] as const,
      registers: [registry],
    }),
    processed: new Counter({
      name: 'switchboard_messages_processed_total',
      help: 'Messages handled by the pipeline, by outcome',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
    sent: new Counter({
      name: 'switchboard_messages_sent_total',
      help: 'Outbound messages handed to a provider, by outcome',
      labelNames: ['channel', 'outcome'] as const,
      registers: [registry],
    }),
    botLatency: new Histogram({
      name: 'switchboard_bot_duration_seconds',
      help: 'Time the bot took per message',
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    pending: new Gauge({
      name: 'switchboard_queue_pending',
      help: 'Messages accepted and not yet processed',
      registers: [registry],
      async collect() {
        this.set(await pendingCount().catch(() => -1));
      },
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
