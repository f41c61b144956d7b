/**
 * @module The bot configuration (SPEC §10, docs/bot-config.md): the document and its checks
 * (`schema.ts`), where it is kept (`repo-*.ts`, `lua/`), the service every consumer reads the settings
 * in force from, the bot that follows them, and the routes. {@link createBotConfig} builds them on
 * the store's backend.
 */
import type { Logger } from 'pino';
import type { AppConfig } from '../../config/schema.js';
import type { Store } from '../core/store.js';
import { ConfiguredBot } from './bot.js';
import type { BotConfigRepo } from './repo.js';
import { MemoryBotConfigRepo } from './repo-memory.js';
import { RedisBotConfigRepo } from './repo-redis.js';
import { envSettings } from './schema.js';
import { type BotConfigOptions, BotConfigService } from './service.js';

export { ConfiguredBot } from './bot.js';
export { botConfigRoutes } from './routes.js';
export type { BotSettings } from './schema.js';
export { type BotConfigOptions, BotConfigService } from './service.js';

/** The service and the bot it drives. */
export interface BotConfig {
  service: BotConfigService;
  bot: ConfiguredBot;
}

/**
 * Builds the service on the store's backend (in memory for the embedded one; the store's Redis, same
 * `REDIS_URL` and key prefix, on a connection of its own) and the bot that follows it. Call
 * `service.start()` before the engine starts, so the first message already runs with the stored settings.
 */
export async function createBotConfig(deps: {
  config: AppConfig;
  logger: Logger;
  store: Store;
  options?: BotConfigOptions;
}): Promise<BotConfig> {
  const { config, store } = deps;
  const repo: BotConfigRepo =
    store.kind === 'redis' && config.REDIS_URL
      ? await RedisBotConfigRepo.connect(config.REDIS_URL, config.REDIS_KEY_PREFIX)
      : new MemoryBotConfigRepo();
  const service = new BotConfigService({
    repo,
    bus: store.bus,
    base: envSettings(config),
    logger: deps.logger,
    options: deps.options,
  });
  const bot = new ConfiguredBot(service.current);
  service.onChange((settings) => bot.apply(settings));
  return { service, bot };
}
