/**
 * @module Handoff to human agents (SPEC §8, docs/handoff.md): the state machine (`machine.ts`), its
 * atomic store steps (`repo-*.ts`, `lua/`), the service the engine and the API call, and the routes.
 * {@link createHandoff} builds the service on the store's backend.
 */
import type { Logger } from 'pino';
import type { AppConfig } from '../../config/schema.js';
import type { EventHub } from '../core/events.js';
import type { Store } from '../core/store.js';
import { MemoryStore } from '../store/memory.js';
import type { HandoffRepo } from './repo.js';
import { MemoryHandoffRepo } from './repo-memory.js';
import { RedisHandoffRepo } from './repo-redis.js';
import { HandoffService, type HandoffSettings, type HandoffSettingsSource } from './service.js';

export { handoffRoutes } from './routes.js';
export { HandoffService } from './service.js';

/**
 * Builds the handoff service on the same backend as the store: the embedded store's own synchronous
 * steps, or the store's Redis (same `REDIS_URL`, key prefix and partitions) on a connection of its own.
 */
export async function createHandoff(deps: {
  config: AppConfig;
  logger: Logger;
  store: Store;
  events: EventHub;
  /** Fixed overrides of the environment's settings, or the live settings (the bot configuration). */
  settings?: Partial<HandoffSettings> | (() => HandoffSettings);
}): Promise<HandoffService> {
  const { config, store } = deps;
  let repo: HandoffRepo;
  if (store instanceof MemoryStore) repo = new MemoryHandoffRepo(store);
  else if (store.kind === 'redis' && config.REDIS_URL)
    repo = await RedisHandoffRepo.connect(config.REDIS_URL, config.REDIS_KEY_PREFIX, config.QUEUE_PARTITIONS);
  else throw new Error('Handoffs need the embedded store or a Redis store with REDIS_URL');
  return new HandoffService({
    repo,
    store,
    events: deps.events,
    logger: deps.logger,
    settings: liveOrFixed(config, deps.settings),
  });
}

function liveOrFixed(
  config: AppConfig,
  settings: Partial<HandoffSettings> | (() => HandoffSettings) | undefined,
): HandoffSettingsSource {
  if (typeof settings === 'function') return settings;
  return {
    keywords: config.HANDOFF_KEYWORDS,
    onBotFailure: config.HANDOFF_ON_BOT_FAILURE,
    idleReleaseS: config.HANDOFF_IDLE_RELEASE_S,
    ...settings,
  };
}
