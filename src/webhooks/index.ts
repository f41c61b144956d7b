/**
 * @module Outbound webhooks to CRMs and ticketing systems (docs/webhooks.md): signed with the
 * Standard Webhooks scheme, queued per endpoint and conversation, retried for about a day, then
 * dead-lettered and replayable. The gateway builds one {@link WebhookService} with
 * {@link createWebhooks}, registers `service.onEvent` on the event hub, and starts/stops it.
 */
import type { Logger } from 'pino';
import type { AppConfig } from '../../config/schema.js';
import type { Store } from '../core/store.js';
import { pacingFor } from '../pacing/index.js';
import type { AttemptObserver } from './dispatcher.js';
import { type WebhookOptions, webhookOptions } from './options.js';
import type { WebhookRepo } from './repo.js';
import { MemoryWebhookRepo } from './repo-memory.js';
import { RedisWebhookRepo } from './repo-redis.js';
import { WebhookService } from './service.js';

export type { AttemptObserver } from './dispatcher.js';
export type { WebhookOptions } from './options.js';
export { webhooksRouter } from './routes.js';
export { WebhookService } from './service.js';

/**
 * Builds the webhook service on the same backend as the store: in memory for the embedded backend,
 * on its own Redis connection (same `REDIS_URL` and key prefix) for the Redis backend.
 */
export async function createWebhooks(deps: {
  config: AppConfig;
  logger: Logger;
  store: Store;
  options?: Partial<WebhookOptions>;
  /** Told of every attempt's outcome, for metrics. */
  onAttempt?: AttemptObserver;
}): Promise<WebhookService> {
  const { config, store } = deps;
  const repo: WebhookRepo =
    store.kind === 'redis' && config.REDIS_URL
      ? await RedisWebhookRepo.connect(config.REDIS_URL, config.REDIS_KEY_PREFIX)
      : new MemoryWebhookRepo();
  return new WebhookService({
    repo,
    bus: store.bus,
    options: webhookOptions({
      perEndpointConcurrency: config.WEBHOOKS_ENDPOINT_CONCURRENCY,
      breakerThreshold: config.WEBHOOKS_BREAKER_THRESHOLD,
      breakerCooldownMs: config.WEBHOOKS_BREAKER_COOLDOWN_MS,
      ...deps.options,
    }),
    allowPrivate: config.WEBHOOKS_ALLOW_PRIVATE,
    logger: deps.logger.child({ component: 'webhooks' }),
    ...(deps.onAttempt ? { onAttempt: deps.onAttempt } : {}),
    // The per-endpoint limit and breakers beside the store: across processes on Redis.
    pacing: pacingFor(store, deps.logger),
  });
}
