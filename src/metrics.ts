/** @module Prometheus metrics (prom-client), one registry per gateway instance. */
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

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
