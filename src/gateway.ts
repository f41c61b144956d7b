/**
 * @module Wires a gateway from a validated config: store, event hub, ingest, engine, adapters and the
 * HTTP server. `start()` listens; `stop()` is the graceful shutdown of SPEC §4.6.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { ADAPTERS } from '../adapters/index.js';
import type { AppConfig } from '../config/schema.js';
import { createApp, EMBEDDED_WARNING } from './app.js';
import { type BotConfigOptions, createBotConfig } from './bot-config/index.js';
import type { ConsoleOptions } from './console/routes.js';
import { createContacts } from './contacts/index.js';
import type { ChannelAdapter, ChannelContext } from './core/channel.js';
import { EventHub } from './core/events.js';
import type { Store } from './core/store.js';
import { VERIFY_MODES } from './core/verify-mode.js';
import type { GatewayDeps, Lifecycle } from './deps.js';
import { createHandoff } from './handoff/index.js';
import { apiKeyAuth } from './http/auth.js';
import { handleExpectContinue } from './http/continue.js';
import { answerUnclaimedUpgrade, HttpDrain } from './http/drain.js';
import { createKeys } from './keys/index.js';
import { createMetrics } from './metrics.js';
import { ParticipantService } from './participants/index.js';
import type { Bot } from './pipeline/bot/types.js';
import { DeliveryService } from './pipeline/delivery.js';
import { Engine } from './pipeline/engine.js';
import { IngestService } from './pipeline/ingest.js';
import { privacyPolicy, redactingBot, redactingIngest, redactingListener } from './privacy/index.js';
import { createRetention } from './retention/index.js';
import { embeddedRoleProblem, rolePlan } from './roles.js';
import { createStore } from './store/index.js';
import { initTracing } from './tracing/index.js';
import { createWebhooks, type WebhookOptions } from './webhooks/index.js';

/** The role as the start-up line says it. */
function roleLine(role: string): string {
  if (role === 'web')
    return 'role web: webhooks, API and web chat; messages are processed by worker processes';
  if (role === 'worker')
    return 'role worker: engine, outbound webhooks and jobs; HTTP health and metrics only';
  return 'role all';
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Resolves when `work` settles or after `ms`, whichever comes first. */
async function within(work: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([work, new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}

export interface Gateway {
  readonly deps: GatewayDeps;
  readonly server: Server;
  /** Listens on PORT/HOST (or the given port) and starts the engine; resolves with the bound URL. */
  start(port?: number, host?: string): Promise<string>;
  /** Graceful shutdown: refuse new work, finish or hand back what is held, close everything. */
  stop(): Promise<void>;
}

export interface GatewayOptions {
  /** Overrides for tests: an existing store, a custom bot. */
  store?: Store;
  bot?: Bot;
  /** False to accept messages without processing them (ingest-only benchmarks). @default true */
  startEngine?: boolean;
  /** Outbound webhook tunables (tests shorten timeouts and the retry schedule). */
  webhooks?: Partial<WebhookOptions>;
  /** Bot configuration tunables (tests turn the change announcements off to test the re-read alone). */
  botConfig?: BotConfigOptions;
  /** The operator console: who may sign in (the `console` scope check), session lifetime. */
  console?: ConsoleOptions;
}

export async function createGateway(
  config: AppConfig,
  logger: Logger,
  opts: GatewayOptions = {},
): Promise<Gateway> {
  const plan = rolePlan(config.ROLE);
  const store = opts.store ?? (await createStore(config, logger));
  // The config refuses a split role without REDIS_URL; an injected store is checked here as well.
  const roleProblem = store.kind === 'embedded' ? embeddedRoleProblem(plan.role) : null;
  if (roleProblem) {
    if (!opts.store) await store.close();
    throw new Error(roleProblem);
  }
  // Before the app is built (it mounts the webhook spans only while tracing is on), SPEC §12; null
  // unless OTEL_EXPORTER_OTLP_ENDPOINT is set.
  const tracing = await initTracing(config, logger);
  const lifecycle: Lifecycle = { draining: false };
  const events = new EventHub((err, event) =>
    logger.error({ err, event: event.type, conversationId: event.conversationId }, 'event listener failed'),
  );
  const metrics = createMetrics(() => store.pendingCount());
  const delivery = new DeliveryService(store, events);
  const contacts = createContacts({ store, events, logger: logger.child({ component: 'contacts' }) });
  // Read before anything runs, so the first message already has the stored bot configuration.
  const botConfig = await createBotConfig({ config, logger, store, options: opts.botConfig });
  await botConfig.service.start();
  const handoff = await createHandoff({
    config,
    logger,
    store,
    events,
    settings: () => botConfig.service.current.handoff,
  });
  const participants = new ParticipantService({ store, events, handoff });
  const privacy = privacyPolicy(config);
  const accepting = new IngestService({ store, config, events, metrics, lifecycle, contacts, participants });
  const ingest = privacy?.store ? redactingIngest(accepting, privacy.types) : accepting;
  const bot: Bot = opts.bot ?? botConfig.bot;
  metrics.watchBreaker(() => bot.circuitOpen?.() ?? false);

  const ctx: ChannelContext = {
    config,
    logger,
    store,
    ingest,
    delivery,
    events,
    publicUrl: config.PUBLIC_URL,
    requireApiKey: apiKeyAuth(config.apiKeys),
    rejected(channel, reason) {
      metrics.rejected.inc({ channel, reason });
    },
    verificationMode(channel, mode, setting) {
      for (const m of VERIFY_MODES) metrics.verificationMode.set({ channel, mode: m }, m === mode ? 1 : 0);
      if (mode === 'report') {
        logger.warn(
          { channel, setting },
          `${setting}=report: ${channel} requests whose signature does not verify are ACCEPTED and only logged; set ${setting}=enforce once the warnings stop`,
        );
      }
    },
    verificationFailed(channel, reason, mode, fields = {}) {
      metrics.verificationFailed.inc({ channel, reason, mode });
      if (mode === 'report') {
        logger.warn(
          { channel, reason, mode, ...fields },
          `${channel} request failed verification; accepted (report mode)`,
        );
      }
    },
  };
  const adapters: ChannelAdapter[] = [];
  for (const module of ADAPTERS) {
    if (module.name in config.channels) {
      adapters.push(
        module.create(
          { ...ctx, logger: logger.child({ channel: module.name }) },
          config.channels[module.name],
        ),
      );
    }
  }
  const engine = new Engine({
    config,
    logger,
    store,
    bot: privacy ? redactingBot(bot, privacy.types) : bot,
    adapters,
    events,
    metrics,
    delivery,
    handoff,
    contacts,
    botSettings: botConfig.service,
  });
  // Outbound webhooks: the listener only enqueues; the dispatcher starts and stops with the gateway.
  const webhooks = await createWebhooks({
    config,
    logger,
    store,
    options: opts.webhooks,
    onAttempt(outcome, latencyMs) {
      metrics.webhookDeliveries.inc({ outcome });
      if (latencyMs !== null) metrics.webhookDeliveryDuration.observe(latencyMs / 1000);
    },
  });
  events.on(privacy ? redactingListener(webhooks.onEvent, privacy.types) : webhooks.onEvent);
  metrics.watchWebhookBreakers(() => webhooks.dispatcher.openBreakers);
  const keys = await createKeys({ store, config, logger: logger.child({ component: 'keys' }) });
  const deps: GatewayDeps = {
    config,
    logger,
    store,
    events,
    ingest,
    delivery,
    adapters,
    engine,
    metrics,
    lifecycle,
    webhooks,
    handoff,
    contacts,
    participants,
    keys,
    botConfig,
    bot,
  };
  for (const adapter of adapters) adapter.attach?.(deps);
  const retention = createRetention({
    days: config.RETENTION_DAYS,
    store,
    contacts,
    events,
    metrics,
    logger,
  });
  // Console sign-in: any key with the `console` scope (every API_KEYS key has every scope).
  const app = createApp(
    deps,
    {
      authenticate: async (token) => {
        const principal = await keys.authenticate(token);
        return principal && { name: principal.name, scopes: principal.scopes };
      },
      ...opts.console,
    },
    { traffic: plan.traffic },
  );
  const server = createServer();
  const drain = new HttpDrain(server);
  // Every request goes through the drain, which answers 503 once shutdown has begun.
  const handle = drain.handler(app);
  server.on('request', handle);
  if (plan.traffic) handleExpectContinue(server, handle, { ...config, keys }, logger, () => drain.draining);
  // Slowloris guard and keep-alive longer than typical proxy idle timeouts.
  server.headersTimeout = 20_000;
  server.requestTimeout = 60_000;
  server.keepAliveTimeout = 65_000;

  let stopped: Promise<void> | null = null;
  return {
    deps,
    server,
    async start(port = config.PORT, host = config.HOST) {
      // A worker opens no provider listeners: adapters send without being started.
      if (plan.listeners) for (const adapter of adapters) await adapter.start?.(server);
      // After the adapters' own upgrade listeners: answers the upgrades none of them took.
      server.on('upgrade', answerUnclaimedUpgrade);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => resolve());
      });
      const working = plan.engine && opts.startEngine !== false;
      // Without workers the engine still hears completions, so the API's `wait` ends when another
      // process answers.
      await engine.start({ claim: working });
      if (working && plan.jobs) {
        handoff.start();
        retention?.start();
      }
      await webhooks.start({ dispatch: plan.dispatcher });
      const address = server.address() as AddressInfo;
      const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
      const url = `http://${shownHost === '0.0.0.0' ? 'localhost' : shownHost}:${address.port}`;
      const embedded = store.kind === 'embedded';
      // One line either way (SPEC §1); at warn on the embedded backend, so nobody runs it unawares.
      logger[embedded ? 'warn' : 'info'](
        {
          url,
          role: plan.role,
          publicUrl: config.PUBLIC_URL,
          backend: store.kind,
          bot: bot.kind,
          botConfigVersion: botConfig.service.version,
          channels: adapters.map((a) => a.name),
          ...(embedded ? { warning: EMBEDDED_WARNING } : {}),
        },
        `gateway listening on ${url} (${roleLine(plan.role)}; ${embedded ? `${EMBEDDED_WARNING}` : 'Redis backend'}; ${bot.kind === 'demo' ? 'demo bot' : `HTTP bot at ${botConfig.service.current.url}`})`,
      );
      if (plan.listeners)
        for (const adapter of adapters) for (const line of adapter.describe()) logger.info(line);
      if (config.apiKeyGenerated) {
        // Printed once, deliberately outside the structured log so log shipping never carries it.
        const kept = config.apiKeyFile
          ? `kept in ${config.apiKeyFile} and reused on restart (development only; set API_KEYS in production)`
          : 'for this run only';
        process.stdout.write(`\nNo API_KEYS set; generated API key, ${kept}: ${config.apiKeys[0]}\n\n`);
      }
      return url;
    },
    stop() {
      stopped ??= (async () => {
        // SHUTDOWN_TIMEOUT_MS bounds everything up to the last socket; only webhooks and the store follow.
        const deadline = Date.now() + config.SHUTDOWN_TIMEOUT_MS;
        const left = () => Math.max(0, deadline - Date.now());
        lifecycle.draining = true;
        drain.begin();
        logger.info('shutdown: refusing new work, finishing messages in flight');
        // Side by side and bounded like the rest: a listener that waits for its clients (an SMTP
        // session) must not hold the engine's drain or the exit.
        const adaptersStopped = Promise.all(
          adapters.map((adapter) =>
            adapter
              .stop?.()
              .catch((err) => logger.error({ err, adapter: adapter.name }, 'adapter stop failed')),
          ),
        );
        // The listener stays open meanwhile: late requests get 503 + Retry-After instead of a refusal.
        await Promise.all([
          within(adaptersStopped, left()),
          engine.stop(left()),
          handoff.stop(),
          botConfig.service.stop(),
          retention?.stop(),
          sleep(Math.min(config.SHUTDOWN_DRAIN_MS, left())),
        ]);
        await drain.settle(deadline);
        if (drain.openSockets > 0)
          logger.info({ sockets: drain.openSockets }, 'shutdown: closing connections');
        await Promise.all([
          drain.close(deadline),
          // After the engine, whose last events are still queued; attempts in flight get a short grace.
          webhooks
            .stop(Math.min(left(), 5_000))
            .catch((err) => logger.error({ err }, 'webhooks stop failed')),
        ]);
        app.closeConsole();
        await handoff.dispose().catch((err) => logger.error({ err }, 'handoff close failed'));
        await keys.stop().catch((err) => logger.error({ err }, 'keys close failed'));
        await botConfig.service
          .dispose()
          .catch((err) => logger.error({ err }, 'bot configuration close failed'));
        await store.close();
        // Last: the spans of everything above are flushed to the collector.
        await tracing?.shutdown();
        logger.info('shutdown complete');
      })();
      return stopped;
    },
  };
}
