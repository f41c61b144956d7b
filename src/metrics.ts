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
  let breakerState: () => boolean = () => false;
  let webhookBreakers: () => number = () => 0;
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
    /** Provider webhook requests (`/webhooks/...`) by channel and status class, refused or not. */
    webhookRequests: new Counter({
      name: 'switchboard_webhook_requests_total',
      help: 'Provider webhook requests, by channel and status class (2xx, 4xx, 5xx)',
      labelNames: ['channel', 'status'] as const,
      registers: [registry],
    }),
    apiRequests: new Counter({
      name: 'switchboard_api_requests_total',
      help: 'REST API (/v1) requests, by method and status class (2xx, 4xx, 5xx)',
      labelNames: ['method', 'status'] as const,
      registers: [registry],
    }),
    httpDuration: new Histogram({
      name: 'switchboard_http_request_duration_seconds',
      help: 'Time to answer an HTTP request, by surface (webhook, api)',
      labelNames: ['surface'] as const,
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    rateLimited: new Counter({
      name: 'switchboard_rate_limited_total',
      help: 'REST API requests refused with 429 by the per-key rate limit',
      registers: [registry],
    }),
    queueWait: new Histogram({
      name: 'switchboard_queue_wait_seconds',
      help: 'Time from accepting a message to a worker taking it (queue lag), by channel',
      labelNames: ['channel'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers: [registry],
    }),
    botRequests: new Counter({
      name: 'switchboard_bot_requests_total',
      help: 'Calls to the bot, by outcome: ok, error (failed after its retries), breaker_open (not called)',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
    breakerOpen: new Gauge({
      name: 'switchboard_bot_breaker_open',
      help: "1 while the bot's circuit breaker is open in this process (calls fail fast), else 0",
      registers: [registry],
      collect() {
        this.set(breakerState() ? 1 : 0);
      },
    }),
    sendDuration: new Histogram({
      name: 'switchboard_send_duration_seconds',
      help: 'Time a provider took to take an outbound message, by channel',
      labelNames: ['channel'] as const,
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    webhookDeliveries: new Counter({
      name: 'switchboard_webhook_delivery_attempts_total',
      help: 'Outbound webhook delivery attempts, by outcome: delivered, failed (will retry), dead (gave up)',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
    webhookDeliveryDuration: new Histogram({
      name: 'switchboard_webhook_delivery_duration_seconds',
      help: 'Time an outbound webhook endpoint took to answer an attempt',
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
    webhookBreakersOpen: new Gauge({
      name: 'switchboard_webhook_breakers_open',
      help: "Outbound webhook endpoints whose circuit breaker (shared by every process) was open at this process's last look",
      registers: [registry],
      collect() {
        this.set(webhookBreakers());
      },
    }),
    /** Tells the webhook breaker gauge where to look (the webhooks are built after the metrics). */
    watchWebhookBreakers(open: () => number) {
      webhookBreakers = open;
    },
    /** Tells the breaker gauge where to look (the bot is built after the metrics). */
    watchBreaker(open: () => boolean) {
      breakerState = open;
    },
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

/** A status code's class as a label: `2xx`, `4xx`, `5xx` (low cardinality, whatever the code). */
function statusClass(status: number): string {
  const hundreds = Math.floor(status / 100);
  return STATUS_CLASSES[hundreds] ?? `${hundreds}xx`;
}

/** The classes of valid status codes, made once rather than per request. */
const STATUS_CLASSES = ['0xx', '1xx', '2xx', '3xx', '4xx', '5xx'];

/** The channel of a provider webhook path (`/webhooks/<channel>/...`); `other` for anything else. */
export function webhookChannel(path: string, known: ReadonlySet<string>): string {
  const name = /^\/webhooks\/([a-z_-]+)/.exec(path)?.[1];
  return name !== undefined && known.has(name) ? name : 'other';
}

/**
 * Counts every request of a surface once it is answered, with its duration: `api` for `/v1`,
 * `webhook` for provider webhooks (by channel). One `finish` listener per request.
 */
export function requestMetrics(
  metrics: Metrics,
  surface: 'api' | 'webhook',
  channels: ReadonlySet<string> = new Set(),
): RequestHandler {
  // prom-client hashes and checks a label set on every call; a child bound once per label set does
  // not. Both label sets are bounded: methods Node's parser knows, channels of `channels` or `other`,
  // three status classes. Looked up by the two values in turn, so no key string is made per request.
  const counted = new Map<string, Map<string, { inc(): void }>>();
  const counter = (first: string, status: string) => {
    let byStatus = counted.get(first);
    if (!byStatus) {
      byStatus = new Map();
      counted.set(first, byStatus);
    }
    let child = byStatus.get(status);
    if (!child) {
      child =
        surface === 'api'
          ? metrics.apiRequests.labels({ method: first, status })
          : metrics.webhookRequests.labels({ channel: first, status });
      byStatus.set(status, child);
    }
    return child;
  };
  const duration = metrics.httpDuration.labels({ surface });
  return function requestMetricsMiddleware(req, res, next) {
    const started = performance.now();
    res.once('finish', () => {
      const status = statusClass(res.statusCode);
      counter(surface === 'api' ? req.method : webhookChannel(req.originalUrl, channels), status).inc();
      if (res.statusCode === 429 && surface === 'api') metrics.rateLimited.inc();
      duration.observe((performance.now() - started) / 1000);
    });
    next();
  };
}
