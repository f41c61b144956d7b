/**
 * The HTTP app with only what the `/v1` conversation API needs: the embedded store, a real event hub
 * (events recorded), metrics, and a logger writing into a capture so tests can read every log line.
 * The engine, ingest, delivery and webhook service are stand-ins that fail loudly if a route ever
 * reaches them.
 */
import type { AddressInfo } from 'node:net';
import { loadConfig } from '../../config/load.js';
import { createApp } from '../../src/app.js';
import { createBotConfig } from '../../src/bot-config/index.js';
import { createContacts } from '../../src/contacts/index.js';
import type { ChannelAdapter, DeliveryReporter, Ingest } from '../../src/core/channel.js';
import { type DomainEvent, EventHub } from '../../src/core/events.js';
import type { GatewayDeps } from '../../src/deps.js';
import { MemoryHandoffRepo } from '../../src/handoff/repo-memory.js';
import { HandoffService } from '../../src/handoff/service.js';
import { createKeys } from '../../src/keys/index.js';
import { createLogger } from '../../src/logger.js';
import { createMetrics } from '../../src/metrics.js';
import { ParticipantService } from '../../src/participants/service.js';
import type { Engine } from '../../src/pipeline/engine.js';
import { MemoryStore } from '../../src/store/memory.js';
import type { WebhookService } from '../../src/webhooks/service.js';
import { API_KEY, apiFetch } from './http.js';
import { LogCapture } from './logs.js';

// Self-contained rather than reusing `gateway.ts`, which loads every adapter (seconds per test file).

/** The one API key the app accepts. */
export { API_KEY, LogCapture };

export interface ApiApp {
  url: string;
  deps: GatewayDeps;
  store: MemoryStore;
  /** Every domain event emitted, in order. */
  events: DomainEvent[];
  logs: LogCapture;
  /** fetch against the app with the test API key (`json` is sent as an application/json body). */
  api(path: string, init?: RequestInit & { json?: unknown }): Promise<Response>;
  close(): Promise<void>;
}

/** An object of type `T` whose every method throws: for dependencies these tests must not touch. */
function unused<T extends object>(name: string): T {
  return new Proxy({} as T, {
    get(_target, prop) {
      // Answering `then` would make the stand-in look like a promise to `await`.
      if (prop === 'then') return undefined;
      return () => {
        throw new Error(`${name}.${String(prop)} is not part of the conversation API`);
      };
    },
  });
}

/**
 * Starts the app on a free loopback port. `env` overrides settings (e.g. `BODY_LIMIT_BYTES`); `adapters`
 * are mounted as the gateway mounts channels (their routes only).
 */
export async function startApiApp(
  env: Record<string, string> = {},
  options: { adapters?: ChannelAdapter[] } = {},
): Promise<ApiApp> {
  // The per-key rate limit is off unless a test sets it (see test/helpers/gateway.ts).
  const config = loadConfig({ API_KEYS: API_KEY, LOG_LEVEL: 'info', RATE_LIMIT_PER_MIN: '0', ...env }, []);
  const logs = new LogCapture();
  const logger = createLogger(config.LOG_LEVEL, logs);
  const store = new MemoryStore({ maxPending: 1000, retryAfterS: 1, logger });
  const recorded: DomainEvent[] = [];
  const events = new EventHub((err) => logger.error({ err }, 'event listener failed'));
  events.on((event) => {
    recorded.push(event);
  });
  const handoff = new HandoffService({
    repo: new MemoryHandoffRepo(store),
    store,
    events,
    logger,
    settings: { keywords: [], onBotFailure: false, idleReleaseS: 0 },
  });
  const botConfig = await createBotConfig({ config, logger, store });
  const deps: GatewayDeps = {
    config,
    logger,
    store,
    events,
    ingest: unused<Ingest>('ingest'),
    delivery: unused<DeliveryReporter>('delivery'),
    adapters: options.adapters ?? [],
    engine: unused<Engine>('engine'),
    metrics: createMetrics(() => store.pendingCount()),
    lifecycle: { draining: false },
    webhooks: unused<WebhookService>('webhooks'),
    handoff,
    participants: new ParticipantService({ store, events, handoff }),
    contacts: createContacts({ store, events }),
    keys: await createKeys({ store, config, logger }),
    botConfig,
  };
  const server = createApp(deps).listen(0, '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    server.once('listening', resolve);
    server.once('error', reject);
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    deps,
    store,
    events: recorded,
    logs,
    api: (path, init = {}) => apiFetch(url, path, init),
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await store.close();
    },
  };
}
