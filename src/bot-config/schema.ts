/**
 * @module The bot configuration document (SPEC §10, docs/bot-config.md): what `PUT /v1/bot` stores
 * and `PATCH /v1/bot` merges into (RFC 7396), the settings in force (the environment overlaid by the
 * stored document), and the view `GET /v1/bot` answers, which never carries the secret.
 */
import { z } from 'zod';
import { DEFAULTS } from '../../config/defaults.js';
import type { AppConfig } from '../../config/schema.js';
import type { FieldError } from '../http/api/schemas.js';

/** How many messages the bot gets as `history` when nothing is configured (the current one included). */
export const DEFAULT_HISTORY_LIMIT = 20;

/**
 * A Standard Webhooks secret: `whsec_` and the base64 of 24 to 64 bytes (the spec's bounds), the form
 * the gateway's own webhook secrets have.
 */
export function isBotSecret(value: string): boolean {
  const m = /^whsec_([A-Za-z0-9+/]+={0,2})$/.exec(value);
  if (!m || m[1]!.length % 4 !== 0) return false;
  const bytes = Buffer.from(m[1]!, 'base64').length;
  return bytes >= 24 && bytes <= 64;
}

// The ranges are those of the BOT_* and HANDOFF_* settings (config/schema.ts): what the environment
// may set, the API may set.
const int = (min: number, max: number) => z.number().int().min(min).max(max);

const url = z
  .string()
  .max(2048)
  .refine((v) => {
    try {
      const u = new URL(v);
      return (u.protocol === 'https:' || u.protocol === 'http:') && u.username === '' && u.password === '';
    } catch {
      return false;
    }
  }, 'must be an absolute http: or https: URL without credentials');

const secret = z
  .string()
  .refine(isBotSecret, 'must be a Standard Webhooks secret: "whsec_" followed by base64 of 24-64 bytes');

const keyword = z
  .string()
  .max(100)
  .transform((k) => k.trim().replace(/\s+/g, ' '))
  .refine((k) => k.length > 0, 'must not be empty');

const fields = {
  url,
  secret,
  timeoutMs: int(100, 120_000),
  maxAttempts: int(1, 10),
  fallbackText: z.string().min(1).max(1000),
  historyLimit: int(1, 200),
  greeting: z.string().min(1).max(1000),
};
const breakerFields = {
  threshold: int(1, 1000),
  cooldownMs: int(100, 3_600_000),
};
const handoffFields = {
  keywords: z.array(keyword).max(100),
  onBotFailure: z.boolean(),
  idleReleaseS: int(0, 30 * 86_400),
};

/** The stored document: every field optional (an absent one is the environment's), unknown ones refused. */
export const botConfigDocument = z.strictObject({
  url: fields.url.optional(),
  secret: fields.secret.optional(),
  timeoutMs: fields.timeoutMs.optional(),
  maxAttempts: fields.maxAttempts.optional(),
  fallbackText: fields.fallbackText.optional(),
  breaker: z
    .strictObject({
      threshold: breakerFields.threshold.optional(),
      cooldownMs: breakerFields.cooldownMs.optional(),
    })
    .optional(),
  historyLimit: fields.historyLimit.optional(),
  greeting: fields.greeting.optional(),
  handoff: z
    .strictObject({
      keywords: handoffFields.keywords.optional(),
      onBotFailure: handoffFields.onBotFailure.optional(),
      idleReleaseS: handoffFields.idleReleaseS.optional(),
    })
    .optional(),
});

/** `PATCH /v1/bot`: a JSON merge patch of the document; `null` removes a stored value. */
export const botConfigPatch = z.strictObject({
  url: fields.url.nullable().optional(),
  secret: fields.secret.nullable().optional(),
  timeoutMs: fields.timeoutMs.nullable().optional(),
  maxAttempts: fields.maxAttempts.nullable().optional(),
  fallbackText: fields.fallbackText.nullable().optional(),
  breaker: z
    .strictObject({
      threshold: breakerFields.threshold.nullable().optional(),
      cooldownMs: breakerFields.cooldownMs.nullable().optional(),
    })
    .nullable()
    .optional(),
  historyLimit: fields.historyLimit.nullable().optional(),
  greeting: fields.greeting.nullable().optional(),
  handoff: z
    .strictObject({
      keywords: handoffFields.keywords.nullable().optional(),
      onBotFailure: handoffFields.onBotFailure.nullable().optional(),
      idleReleaseS: handoffFields.idleReleaseS.nullable().optional(),
    })
    .nullable()
    .optional(),
});

export type BotConfigDocument = z.infer<typeof botConfigDocument>;
export type BotConfigPatch = z.infer<typeof botConfigPatch>;

/** The settings in force: the environment's, overlaid by the stored document. */
export interface BotSettings {
  /** Null: the built-in demo bot. */
  url: string | null;
  secret: string | null;
  timeoutMs: number;
  maxAttempts: number;
  fallbackText: string;
  breaker: { threshold: number; cooldownMs: number };
  historyLimit: number;
  greeting: string | null;
  handoff: { keywords: readonly string[]; onBotFailure: boolean; idleReleaseS: number };
}

/** The settings the environment gives (SPEC §2: BOT_*, HANDOFF_*). */
export function envSettings(config: AppConfig): BotSettings {
  return {
    url: config.BOT_URL ?? null,
    secret: config.BOT_SECRET ?? null,
    timeoutMs: config.BOT_TIMEOUT_MS,
    maxAttempts: config.BOT_MAX_ATTEMPTS,
    fallbackText: config.BOT_FALLBACK_TEXT ?? DEFAULTS.BOT_FALLBACK_TEXT,
    breaker: { threshold: config.BOT_BREAKER_THRESHOLD, cooldownMs: config.BOT_BREAKER_COOLDOWN_MS },
    historyLimit: DEFAULT_HISTORY_LIMIT,
    greeting: null,
    handoff: {
      keywords: config.HANDOFF_KEYWORDS,
      onBotFailure: config.HANDOFF_ON_BOT_FAILURE,
      idleReleaseS: config.HANDOFF_IDLE_RELEASE_S,
    },
  };
}

/** `base` with every field the document sets replaced by the document's. */
export function overlay(base: BotSettings, doc: BotConfigDocument): BotSettings {
  return {
    url: doc.url ?? base.url,
    secret: doc.secret ?? base.secret,
    timeoutMs: doc.timeoutMs ?? base.timeoutMs,
    maxAttempts: doc.maxAttempts ?? base.maxAttempts,
    fallbackText: doc.fallbackText ?? base.fallbackText,
    breaker: {
      threshold: doc.breaker?.threshold ?? base.breaker.threshold,
      cooldownMs: doc.breaker?.cooldownMs ?? base.breaker.cooldownMs,
    },
    historyLimit: doc.historyLimit ?? base.historyLimit,
    greeting: doc.greeting ?? base.greeting,
    handoff: {
      keywords: doc.handoff?.keywords ?? base.handoff.keywords,
      onBotFailure: doc.handoff?.onBotFailure ?? base.handoff.onBotFailure,
      idleReleaseS: doc.handoff?.idleReleaseS ?? base.handoff.idleReleaseS,
    },
  };
}

/** What would break the bot in settings whose fields are each valid: a URL with nothing to sign. */
export function settingsProblems(settings: BotSettings): FieldError[] {
  if (settings.url !== null && settings.secret === null) {
    return [{ field: 'secret', message: 'is required when url is set (requests to the bot are signed)' }];
  }
  return [];
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/**
 * RFC 7396 JSON merge patch: members of `patch` replace those of `target`, objects are merged
 * member by member, `null` removes. Objects left empty are dropped (an empty `breaker` says nothing).
 */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) return patch;
  const result: Record<string, Json> =
    typeof target === 'object' && target !== null && !Array.isArray(target)
      ? { ...(target as Record<string, Json>) }
      : {};
  for (const [key, value] of Object.entries(patch as Record<string, Json>)) {
    if (value === null) {
      delete result[key];
      continue;
    }
    const merged = mergePatch(result[key], value) as Json;
    if (
      typeof merged === 'object' &&
      merged !== null &&
      !Array.isArray(merged) &&
      Object.keys(merged).length === 0
    ) {
      delete result[key];
    } else {
      result[key] = merged;
    }
  }
  return result;
}

/** The field paths the document sets (`url`, `breaker.threshold`, ...); never reveals values. */
export function storedFields(doc: BotConfigDocument): string[] {
  const out: string[] = [];
  for (const [key, value] of Object.entries(doc)) {
    if (value === undefined) continue;
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
      for (const [inner, v] of Object.entries(value)) if (v !== undefined) out.push(`${key}.${inner}`);
    } else {
      out.push(key);
    }
  }
  return out.sort();
}

/** `GET /v1/bot` (and the answer of every write): the settings in force, the secret withheld. */
export const botConfigResponse = z.object({
  /** `http` when a URL is configured, else the built-in demo bot. */
  bot: z.enum(['http', 'demo']),
  url: z.string().nullable(),
  /** Whether a signing secret is configured; the secret itself is never answered. */
  secretSet: z.boolean(),
  timeoutMs: z.number().int(),
  maxAttempts: z.number().int(),
  fallbackText: z.string(),
  breaker: z.object({ threshold: z.number().int(), cooldownMs: z.number().int() }),
  historyLimit: z.number().int(),
  greeting: z.string().nullable(),
  handoff: z.object({
    keywords: z.array(z.string()),
    onBotFailure: z.boolean(),
    idleReleaseS: z.number().int(),
  }),
  /** The fields the stored configuration sets (the others are the environment's). */
  stored: z.array(z.string()),
  /** The stored configuration's version (0: nothing stored); the `ETag` is `"<version>"`. */
  version: z.number().int(),
  updatedAt: z.string().nullable(),
});

export type BotConfigView = z.infer<typeof botConfigResponse>;

export function toView(
  settings: BotSettings,
  doc: BotConfigDocument,
  version: number,
  updatedAt: string | null,
): BotConfigView {
  return {
    bot: settings.url === null ? 'demo' : 'http',
    url: settings.url,
    secretSet: settings.secret !== null,
    timeoutMs: settings.timeoutMs,
    maxAttempts: settings.maxAttempts,
    fallbackText: settings.fallbackText,
    breaker: { ...settings.breaker },
    historyLimit: settings.historyLimit,
    greeting: settings.greeting,
    handoff: { ...settings.handoff, keywords: [...settings.handoff.keywords] },
    stored: storedFields(doc),
    version,
    updatedAt,
  };
}
