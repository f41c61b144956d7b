/** @module The dependencies the gateway is wired from; tests build their own. */
import type { Logger } from 'pino';
import type { AppConfig } from '../config/schema.js';
import type { BotConfig } from './bot-config/index.js';
import type { ContactService } from './contacts/service.js';
import type { ChannelAdapter, DeliveryReporter, Ingest } from './core/channel.js';
import type { EventHub } from './core/events.js';
import type { Store } from './core/store.js';
import type { HandoffService } from './handoff/service.js';
import type { KeyService } from './keys/service.js';
import type { Metrics } from './metrics.js';
import type { ParticipantService } from './participants/service.js';
import type { Bot } from './pipeline/bot/types.js';
import type { Engine } from './pipeline/engine.js';
import type { WebhookService } from './webhooks/service.js';

export interface Lifecycle {
  /** True once SIGTERM was received: new work is refused with 503. */
  draining: boolean;
}

export interface GatewayDeps {
  config: AppConfig;
  logger: Logger;
  store: Store;
  events: EventHub;
  ingest: Ingest;
  delivery: DeliveryReporter;
  adapters: readonly ChannelAdapter[];
  engine: Engine;
  metrics: Metrics;
  lifecycle: Lifecycle;
  /** Outbound webhooks to CRMs: subscriptions, delivery log, replay. */
  webhooks: WebhookService;
  /** Handoffs to human agents (SPEC §8). */
  handoff: HandoffService;
  /** Contacts and cross-channel identity (SPEC §9). */
  contacts: ContactService;
  /** Participants of conversations: joins, leaves and their events (SPEC §8). */
  participants: ParticipantService;
  /** API keys: `API_KEYS` and managed keys with their scopes (SPEC §10). */
  keys: KeyService;
  /** The bot configuration in force and the bot that follows it (SPEC §10). */
  botConfig: BotConfig;
  /** The bot the engine calls, for its health in the operator console (SPEC §11). */
  bot?: Bot;
}
