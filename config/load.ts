/**
 * @module Reads the environment once: validates the core schema and every adapter's settings,
 * reports every problem at once, and returns a deep-frozen config. No other module reads `process.env`
 * (`loadEnvFile` only adds a local `.env` file to it, before anything reads it).
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { z } from 'zod';
import type { AdapterModule, Env } from '../src/core/channel.js';
import { embeddedRoleProblem } from '../src/roles.js';
import { type AppConfig, coreSchema } from './schema.js';

/** Each problem is one line naming the setting, what was given (secrets hidden) and what is expected. */
export class ConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    const count = problems.length === 1 ? 'one problem' : `${problems.length} problems`;
    super(
      `Switchboard cannot start: ${count} with the settings (every setting is described in config/env.example and README.md):\n${problems.map((p) => `  - ${p}`).join('\n')}`,
    );
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/**
 * Adds the settings of a `.env` file, when there is one, to `process.env` with Node's own parser
 * (`process.loadEnvFile`). Variables already set in the environment win over the file. Returns
 * whether a file was read.
 */
export function loadEnvFile(path = '.env'): boolean {
  if (!existsSync(path)) return false;
  const before = { ...process.env };
  process.loadEnvFile(path);
  // Whatever this Node version's own precedence, the environment wins over the file.
  Object.assign(process.env, before);
  return true;
}

/** Where a generated development API key is kept across restarts (git-ignored). */
export const DEV_API_KEY_FILE = '.switchboard/dev-api-key';

const GENERATED_KEY = /^sk_[A-Za-z0-9_-]{32}$/;

function generateKey(): string {
  return `sk_${randomBytes(24).toString('base64url')}`;
}

/**
 * Reads the kept development key, or makes one and keeps it (mode 0600, directory 0700). Null when
 * the file can be neither read nor written (a read-only checkout): the key is then for this run only.
 */
function devApiKey(file: string): string | null {
  try {
    const kept = readFileSync(file, 'utf8').trim();
    if (GENERATED_KEY.test(kept)) return kept;
  } catch {
    // No key kept yet (or unreadable): make one below.
  }
  const key = generateKey();
  try {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, `${key}\n`, { mode: 0o600 });
    chmodSync(tmp, 0o600);
    renameSync(tmp, file);
    return key;
  } catch {
    return null;
  }
}

export interface LoadOptions {
  /**
   * Keep a generated API key in this file and reuse it on the next start, so saved scripts keep
   * working in development. Never used when `NODE_ENV=production` (neither read nor written).
   */
  devKeyFile?: string;
}

/** Settings whose values are never shown, not even in an error message. */
const SECRET = /SECRET|TOKEN|PASSWORD|PRIVATE|API_KEYS|SIGNING_KEY|JWT_PUBLIC_KEY|OTLP_HEADERS/;

/** What was given, as it may be shown: secrets hidden, passwords in URLs masked, long values cut. */
export function shownValue(name: string, value: string | undefined): string {
  if (value === undefined) return 'not set';
  if (SECRET.test(name)) return `= (hidden, ${value.length} characters)`;
  let shown = value.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^@/?#]*@/i, (_m, scheme: string) => `${scheme}***@`);
  if (shown.length > 80) shown = `${shown.slice(0, 77)}...`;
  return `= ${JSON.stringify(shown)}`;
}

/** Turns a validator's generic message into what is expected; a message written for people stays as is. */
export function expectedText(message: string): string {
  const rules: Array<[RegExp, (m: RegExpExecArray) => string]> = [
    [/^Invalid input: expected int, received .*$/, () => 'expected a whole number'],
    [/^Invalid input: expected number, received .*$/, () => 'expected a number'],
    [/^Invalid input: expected (\w+), received .*$/, (m) => `expected a ${m[1]}`],
    [/^Too small: expected number to be >=?(\S+)$/, (m) => `expected a number of at least ${m[1]}`],
    [/^Too big: expected number to be <=?(\S+)$/, (m) => `expected a number of at most ${m[1]}`],
    [
      /^Too small: expected string to have >=?(\d+) characters?$/,
      (m) => `expected at least ${m[1]} characters`,
    ],
    [/^Too big: expected string to have <=?(\d+) characters?$/, (m) => `expected at most ${m[1]} characters`],
    [
      /^Invalid option: expected one of (.*)$/,
      (m) => `expected one of ${m[1]!.replace(/"/g, '').split('|').join(', ')}`,
    ],
    [/^Invalid URL$/, () => 'expected a URL such as https://example.com'],
    [/^Invalid string: must match pattern .*$/, () => 'not in the expected format'],
    [/^must be (.*)$/s, (m) => `expected ${m[1]}`],
  ];
  for (const [re, say] of rules) {
    const m = re.exec(message);
    if (m) return say(m);
  }
  return message;
}

/** Unwraps `.default()` / `.optional()` to the schema underneath. */
function inner(schema: z.ZodType): z.ZodType {
  let s = schema as z.ZodType & { unwrap?: () => z.ZodType };
  while (typeof s.unwrap === 'function') s = s.unwrap() as typeof s;
  return s;
}

/** For a numeric core setting, the range it accepts, in words. */
function expectedRange(name: string): string | undefined {
  const field = (coreSchema.shape as Record<string, z.ZodType>)[name];
  if (!field) return undefined;
  const n = inner(field) as z.ZodType & {
    minValue?: number | null;
    maxValue?: number | null;
    isInt?: boolean;
  };
  if (typeof n.minValue !== 'number' || typeof n.maxValue !== 'number') return undefined;
  return `expected a ${n.isInt ? 'whole ' : ''}number from ${n.minValue} to ${n.maxValue}`;
}

/** One line per setting: `NAME = "given": what is expected`, secrets hidden. */
function describe(env: Env, name: string, messages: string[], channel?: string): string {
  const range = expectedRange(name);
  let texts = [
    ...new Set(
      messages.map((m) => (range && /^(Invalid input|Too small|Too big)/.test(m) ? range : expectedText(m))),
    ),
  ];
  // A generic "not a URL" or "not a string" adds nothing beside a specific message.
  const generic = /^expected a (URL such as|string$)/;
  if (texts.some((t) => !generic.test(t))) texts = texts.filter((t) => !generic.test(t));
  if (env[name] === undefined && texts.every((t) => generic.test(t))) texts = ['required'];
  const given = shownValue(name, env[name]);
  const label =
    env[name] === undefined
      ? `${name} (${channel ? `${channel} channel, ` : ''}not set)`
      : `${name} ${given}${channel ? ` (${channel} channel)` : ''}`;
  return `${label}: ${texts.join('; ')}`;
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

export function loadConfig(
  rawEnv: Env,
  adapters: readonly AdapterModule[],
  options: LoadOptions = {},
): AppConfig {
  const env = clean(rawEnv);
  const problems: string[] = [];
  const core = coreSchema.safeParse(env);
  // Grouped by setting, in the order first seen: one line per setting.
  const bySetting = new Map<string, string[]>();
  const add = (name: string, message: string) =>
    bySetting.set(name, [...(bySetting.get(name) ?? []), message]);
  if (!core.success) {
    for (const issue of core.error.issues) add(issue.path.join('.'), issue.message);
  }
  if (env.BOT_URL && !env.BOT_SECRET) {
    add('BOT_SECRET', 'required when BOT_URL is set (requests to the bot are signed)');
  }
  if (env.BOT_SECRET && !/^whsec_[A-Za-z0-9+/=]{32,}$/.test(env.BOT_SECRET)) {
    add('BOT_SECRET', 'expected a Standard Webhooks secret, "whsec_" followed by base64 of 24-64 bytes');
  }
  // Fail closed: a split role on the embedded backend would accept messages no process ever answers.
  const roleProblem = core.success && !env.REDIS_URL ? embeddedRoleProblem(core.data.ROLE) : null;
  if (roleProblem) add('ROLE', roleProblem);
  if (env.PII_REDACT_STORE && /^(true|1)$/.test(env.PII_REDACT_STORE) && !env.PII_REDACT?.trim()) {
    add('PII_REDACT_STORE', 'masks the stored copy of what PII_REDACT lists; set PII_REDACT too');
  }
  const apiKeys = (env.API_KEYS ?? '')
    .split(',')
    .map((k) => k.trim())
    .filter(Boolean);
  const short = apiKeys.filter((key) => key.length < 16).length;
  if (short > 0) {
    add(
      'API_KEYS',
      `expected every key to have at least 16 characters (${short} of ${apiKeys.length} shorter)`,
    );
  }
  for (const [name, messages] of bySetting) problems.push(describe(env, name, messages));

  const channels: Record<string, unknown> = {};
  for (const adapter of adapters) {
    const result = adapter.configure(env);
    if ('errors' in result) {
      const byAdapterSetting = new Map<string, string[]>();
      for (const error of result.errors) {
        // "NAME: message" is about one setting: say what was given. Anything else names several.
        const m = /^([A-Z][A-Z0-9_]+): (.*)$/s.exec(error);
        if (m) byAdapterSetting.set(m[1]!, [...(byAdapterSetting.get(m[1]!) ?? []), m[2]!]);
        else problems.push(`${adapter.name} channel: ${error}`);
      }
      for (const [name, messages] of byAdapterSetting)
        problems.push(describe(env, name, messages, adapter.name));
    } else if (result.enabled) channels[adapter.name] = result.config;
  }

  if (problems.length > 0 || !core.success) throw new ConfigError(problems);
  const port = core.data.PORT;
  const { API_KEYS: _keys, PUBLIC_URL, ...rest } = core.data;
  const generated = apiKeys.length === 0;
  // A kept key is a development convenience only: production never reads or writes the file.
  const keyFile = generated && env.NODE_ENV !== 'production' ? (options.devKeyFile ?? null) : null;
  const keptKey = keyFile ? devApiKey(keyFile) : null;
  return deepFreeze({
    ...rest,
    PUBLIC_URL: (PUBLIC_URL ?? `http://localhost:${port}`).replace(/\/+$/, ''),
    apiKeys: generated ? [keptKey ?? generateKey()] : apiKeys,
    apiKeyGenerated: generated,
    apiKeyFile: keptKey ? keyFile : null,
    channels,
  });
}
