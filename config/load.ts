/**
 * @module Reads the environment once: validates the core schema and every adapter's settings,
 * reports every problem at once, and returns a deep-frozen config. No other module reads `process.env`.
 */
import { randomBytes } from 'node:crypto';
import type { AdapterModule, Env } from '../src/core/channel.js';
import { type AppConfig, coreSchema } from './schema.js';

export class ConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

/** Empty strings count as unset, as in most process managers' env files. */
function clean(env: Env): Env {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined && v.trim() !== '') out[k] = v.trim();
  return out;
}

export function loadConfig(rawEnv: Env, adapters: readonly AdapterModule[]): AppConfig {
  const env = clean(rawEnv);
  const problems: string[] = [];
  const core = coreSchema.safeParse(env);
  if (!core.success) {
    for (const issue of core.error.issues) problems.push(`${issue.path.join('.')}: ${issue.message}`);
  }
  if (env.BOT_URL && !env.BOT_SECRET) {
    problems.push('BOT_SECRET: required when BOT_URL is set (requests to the bot are signed)');
  }
  if (env.BOT_SECRET && !/^whsec_[A-Za-z0-9+/=]{32,}$/.test(env.BOT_SECRET)) {
    problems.push(
      'BOT_SECRET: must be a Standard Webhooks secret, "whsec_" followed by base64 of 24-64 bytes',
    );
  }
  const apiKeys = (env.API_KEYS ?? '')
    .split(',')
    .map((k) => k.trim())
    .filter(Boolean);
  for (const key of apiKeys) {
    if (key.length < 16) problems.push('API_KEYS: every key must be at least 16 characters');
  }

  const channels: Record<string, unknown> = {};
  for (const adapter of adapters) {
    const result = adapter.configure(env);
    if ('errors' in result) problems.push(...result.errors.map((e) => `${adapter.name}: ${e}`));
    else if (result.enabled) channels[adapter.name] = result.config;
  }

  if (problems.length > 0 || !core.success) throw new ConfigError(problems);
  const port = core.data.PORT;
  const { API_KEYS: _keys, PUBLIC_URL, ...rest } = core.data;
  const generated = apiKeys.length === 0;
  return deepFreeze({
    ...rest,
    PUBLIC_URL: (PUBLIC_URL ?? `http://localhost:${port}`).replace(/\/+$/, ''),
    apiKeys: generated ? [`sk_${randomBytes(24).toString('base64url')}`] : apiKeys,
    apiKeyGenerated: generated,
    channels,
  });
}
