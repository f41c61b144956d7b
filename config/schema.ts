/**
 * @module The core settings schema (SPEC §2). Adapter settings live with each adapter
 * (`adapters/<name>/config.ts`) and are merged in by `load.ts`.
 */
import { z } from 'zod';
import { parseTrustedProxies } from '../src/core/client-address.js';
import { parseKeywords } from '../src/handoff/keywords.js';
import { ENTITY_TYPES, type EntityType } from '../src/privacy/redact.js';
import { DEFAULTS } from './defaults.js';

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);
const bool = z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1');
const httpUrl = z
  .string()
  .url()
  .refine((v) => /^https?:\/\//.test(v), 'must be an http(s) URL');

/** The highest `RATE_LIMIT_PER_MIN`, and of a managed key's own `rateLimitPerMin`. */
export const MAX_RATE_LIMIT_PER_MIN = 100_000_000;

export const coreSchema = z.object({
  // docs/running.md#roles: what this process runs; `web` and `worker` need REDIS_URL (load.ts).
  ROLE: z.enum(['all', 'web', 'worker']).default(DEFAULTS.ROLE),
  PORT: int(0, 65_535).default(DEFAULTS.PORT),
  HOST: z.string().min(1).default(DEFAULTS.HOST),
  PUBLIC_URL: httpUrl.optional(),
  REDIS_URL: z
    .string()
    .regex(
      /^(rediss?|redis-sentinel|redis-cluster):\/\//,
      'must start with redis://, rediss://, redis-sentinel:// or redis-cluster://',
    )
    .optional(),
  REDIS_KEY_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9:_-]{1,32}$/, 'letters, digits, ":", "_" or "-", at most 32')
    .default(DEFAULTS.REDIS_KEY_PREFIX),
  REDIS_WAIT_REPLICAS: z
    .string()
    .regex(/^(auto|\d{1,2})$/, 'must be auto or a replica count')
    .default(DEFAULTS.REDIS_WAIT_REPLICAS)
    .transform((v) => (v === 'auto' ? ('auto' as const) : Number(v))),
  REDIS_WAIT_TIMEOUT_MS: int(1, 60_000).default(DEFAULTS.REDIS_WAIT_TIMEOUT_MS),
  API_KEYS: z.string().optional(),
  // A bearer token for GET /metrics; see src/metrics.ts for what happens when it is unset.
  METRICS_TOKEN: z
    .string()
    .regex(/^\S{16,256}$/, 'must be 16 to 256 characters without spaces')
    .optional(),
  // Only `production` means anything: it closes what is open by default for trying the gateway out.
  NODE_ENV: z.string().optional(),
  BOT_URL: httpUrl.optional(),
  BOT_SECRET: z.string().optional(),
  BOT_TIMEOUT_MS: int(100, 120_000).default(DEFAULTS.BOT_TIMEOUT_MS),
  BOT_MAX_ATTEMPTS: int(1, 10).default(DEFAULTS.BOT_MAX_ATTEMPTS),
  TYPING_AFTER_MS: int(0, 60_000).default(DEFAULTS.TYPING_AFTER_MS),
  BOT_BREAKER_THRESHOLD: int(1, 1000).default(DEFAULTS.BOT_BREAKER_THRESHOLD),
  BOT_BREAKER_COOLDOWN_MS: int(100, 3_600_000).default(DEFAULTS.BOT_BREAKER_COOLDOWN_MS),
  BOT_FALLBACK_TEXT: z.string().min(1).max(1000).default(DEFAULTS.BOT_FALLBACK_TEXT),
  // SPEC §8: the first values of the handoff settings; the bot configuration (§10) can change them.
  HANDOFF_KEYWORDS: z
    .string()
    .optional()
    .transform((value) => parseKeywords(value)),
  HANDOFF_ON_BOT_FAILURE: bool.default(DEFAULTS.HANDOFF_ON_BOT_FAILURE),
  HANDOFF_IDLE_RELEASE_S: int(0, 30 * 86_400).default(DEFAULTS.HANDOFF_IDLE_RELEASE_S),
  DEDUPE_TTL_S: int(1, 30 * 86_400).default(DEFAULTS.DEDUPE_TTL_S),
  // Requests per minute per API key on /v1 (SPEC §10; docs/limits.md); 0 turns the limit off.
  RATE_LIMIT_PER_MIN: int(0, MAX_RATE_LIMIT_PER_MIN).default(DEFAULTS.RATE_LIMIT_PER_MIN),
  // Days a conversation is kept after its last message (SPEC §12); unset keeps everything.
  RETENTION_DAYS: int(1, 36_500).optional(),
  SESSION_IDLE_S: int(1, 30 * 86_400).default(DEFAULTS.SESSION_IDLE_S),
  // SPEC §9 (docs/contacts.md#conversation-scope): one conversation per channel thread, or per contact.
  CONVERSATION_SCOPE: z.enum(['channel', 'contact']).default(DEFAULTS.CONVERSATION_SCOPE),
  LEASE_MS: int(200, 600_000).default(DEFAULTS.LEASE_MS),
  WORKER_CONCURRENCY: int(1, 1024).default(DEFAULTS.WORKER_CONCURRENCY),
  QUEUE_MAX_PENDING: int(1, 100_000_000).default(DEFAULTS.QUEUE_MAX_PENDING),
  QUEUE_PARTITIONS: int(1, 1024).default(DEFAULTS.QUEUE_PARTITIONS),
  BODY_LIMIT_BYTES: int(1024, 50 * 1_048_576).default(DEFAULTS.BODY_LIMIT_BYTES),
  SHUTDOWN_TIMEOUT_MS: int(0, 600_000).default(DEFAULTS.SHUTDOWN_TIMEOUT_MS),
  SHUTDOWN_DRAIN_MS: int(0, 600_000).default(DEFAULTS.SHUTDOWN_DRAIN_MS),
  WEBHOOKS_ALLOW_PRIVATE: bool.default(false),
  // docs/pacing.md: held over all processes sharing one Redis.
  WEBHOOKS_ENDPOINT_CONCURRENCY: int(1, 1024).default(DEFAULTS.WEBHOOKS_ENDPOINT_CONCURRENCY),
  WEBHOOKS_BREAKER_THRESHOLD: int(1, 1000).default(DEFAULTS.WEBHOOKS_BREAKER_THRESHOLD),
  WEBHOOKS_BREAKER_COOLDOWN_MS: int(100, 86_400_000).default(DEFAULTS.WEBHOOKS_BREAKER_COOLDOWN_MS),
  TRUSTED_PROXIES: z
    .string()
    .optional()
    .transform((value, ctx) => {
      const { cidrs, problems } = parseTrustedProxies(value);
      for (const message of problems) ctx.addIssue({ code: 'custom', message });
      return cidrs;
    }),
  // SPEC §12: entity types masked before the bot, the logs and outbound webhooks see a message.
  PII_REDACT: z
    .string()
    .optional()
    .transform((value, ctx) => {
      const types = (value ?? '')
        .split(',')
        .map((t) => t.trim().toLowerCase())
        .filter(Boolean);
      const unknown = types.filter((t) => !(ENTITY_TYPES as readonly string[]).includes(t));
      if (unknown.length > 0)
        ctx.addIssue({
          code: 'custom',
          message: `unknown entity type ${unknown.join(', ')}; use ${ENTITY_TYPES.join(', ')}`,
        });
      return [...new Set(types)] as EntityType[];
    }),
  PII_REDACT_STORE: bool.default(false),
  LOG_LEVEL: z
    .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
    .default(DEFAULTS.LOG_LEVEL),
  // SPEC §12 (docs/production.md#tracing): tracing is on exactly when the endpoint is set. The SDK reads
  // these (and the other OTEL_* variables) from the environment itself; they are checked here so a
  // typo stops the start instead of silently tracing nothing.
  OTEL_EXPORTER_OTLP_ENDPOINT: httpUrl.optional(),
  OTEL_EXPORTER_OTLP_HEADERS: z.string().optional(),
  OTEL_SERVICE_NAME: z.string().min(1).optional(),
  OTEL_RESOURCE_ATTRIBUTES: z.string().optional(),
  OTEL_TRACES_SAMPLER: z
    .enum([
      'always_on',
      'always_off',
      'traceidratio',
      'parentbased_always_on',
      'parentbased_always_off',
      'parentbased_traceidratio',
    ])
    .optional(),
  OTEL_TRACES_SAMPLER_ARG: z.coerce.number().min(0).max(1).optional(),
});

export type CoreConfig = z.infer<typeof coreSchema>;

export interface AppConfig extends Omit<CoreConfig, 'API_KEYS' | 'PUBLIC_URL'> {
  PUBLIC_URL: string;
  /** Accepted API keys; when none were configured, one generated key. */
  apiKeys: readonly string[];
  /** True when `apiKeys` was generated at start (it is printed once). */
  apiKeyGenerated: boolean;
  /** Where the generated key is kept across restarts (development only); null when it is for this run. */
  apiKeyFile: string | null;
  /** Settings of each enabled channel adapter, by adapter name. */
  channels: Readonly<Record<string, unknown>>;
}
