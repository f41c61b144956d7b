import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ADAPTERS } from '../../adapters/index.js';
import { ConfigError, loadConfig, loadEnvFile } from '../../config/load.js';
import { coreSchema } from '../../config/schema.js';

const envExample = readFileSync(new URL('../../config/env.example', import.meta.url), 'utf8');
const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
const documented = new Set(
  [...envExample.matchAll(/^#?\s*([A-Z][A-Z0-9_]+)=/gm)].map((m) => m[1]).filter((n): n is string => !!n),
);

describe('configuration', () => {
  it('documents every setting in config/env.example, and nothing else', () => {
    const known = new Set([...Object.keys(coreSchema.shape), ...ADAPTERS.flatMap((a) => a.settings)]);
    expect([...known].filter((k) => !documented.has(k)).sort()).toEqual([]);
    expect([...documented].filter((k) => !known.has(k)).sort()).toEqual([]);
  });

  it("lists every setting in README's settings tables (core and every adapter), and nothing unknown", () => {
    // The "## Settings" section, up to the next second-level heading: its tables' first column.
    const section = readme.split(/^## /m).find((part) => part.startsWith('Settings\n'));
    expect(section, 'README has a "## Settings" section').toBeDefined();
    const inTables = new Set(
      (section ?? '')
        .split('\n')
        .filter((line) => /^\|\s*`/.test(line))
        .flatMap((line) =>
          [...(line.split('|')[1] ?? '').matchAll(/`([A-Z][A-Z0-9_]+)`/g)].map((m) => m[1]!),
        ),
    );
    const known = new Set([...Object.keys(coreSchema.shape), ...ADAPTERS.flatMap((a) => a.settings)]);
    expect([...known].filter((k) => !inTables.has(k)).sort(), 'settings missing from README').toEqual([]);
    // NODE_ENV is read as well (production never keeps a generated key) but is no schema setting.
    const extra = new Set(['NODE_ENV']);
    expect(
      [...inTables].filter((k) => !known.has(k) && !extra.has(k)).sort(),
      'README lists settings the code does not read',
    ).toEqual([]);
  });

  it('starts with no settings at all, on the embedded backend with a generated API key', () => {
    const config = loadConfig({}, ADAPTERS);
    expect(config.REDIS_URL).toBeUndefined();
    expect(config.PORT).toBe(3000);
    expect(config.PUBLIC_URL).toBe('http://localhost:3000');
    expect(config.apiKeyGenerated).toBe(true);
    expect(config.apiKeys[0]).toMatch(/^sk_[A-Za-z0-9_-]{32}$/);
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.channels)).toBe(true);
  });

  it('reports every problem at once', () => {
    let error: unknown;
    try {
      loadConfig({ PORT: 'abc', LEASE_MS: '5', BOT_URL: 'ftp://bot', API_KEYS: 'short' }, ADAPTERS);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const problems = (error as ConfigError).problems.join('\n');
    for (const key of ['PORT', 'LEASE_MS', 'BOT_URL', 'BOT_SECRET', 'API_KEYS'])
      expect(problems).toContain(key);
  });

  it('requires a Standard Webhooks secret when a bot URL is set (fail closed)', () => {
    expect(() => loadConfig({ BOT_URL: 'http://127.0.0.1:9/bot' }, ADAPTERS)).toThrow(/BOT_SECRET/);
    expect(() => loadConfig({ BOT_URL: 'http://127.0.0.1:9/bot', BOT_SECRET: 'plain' }, ADAPTERS)).toThrow(
      /whsec_/,
    );
    const ok = loadConfig(
      { BOT_URL: 'http://127.0.0.1:9/bot', BOT_SECRET: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' },
      ADAPTERS,
    );
    expect(ok.BOT_URL).toBe('http://127.0.0.1:9/bot');
  });

  it('treats empty values as unset and strips a trailing slash from PUBLIC_URL', () => {
    const config = loadConfig({ REDIS_URL: '', PUBLIC_URL: 'https://chat.example.com/' }, ADAPTERS);
    expect(config.REDIS_URL).toBeUndefined();
    expect(config.PUBLIC_URL).toBe('https://chat.example.com');
  });
});

/** The problems `loadConfig` reports for `env`. */
function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig(env, ADAPTERS);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('configuration problems, said for people', () => {
  it('names the setting, what was given and what is expected, one line per setting', () => {
    const problems = problemsOf({ PORT: 'abc', LEASE_MS: '5', LOG_LEVEL: 'loud', EMAIL_SMTP_PORT: 'x25' });
    expect(problems).toContain('PORT = "abc": expected a whole number from 0 to 65535');
    expect(problems).toContain('LEASE_MS = "5": expected a whole number from 200 to 600000');
    expect(problems).toContain(
      'LOG_LEVEL = "loud": expected one of fatal, error, warn, info, debug, trace, silent',
    );
    expect(problems.find((p) => p.startsWith('EMAIL_SMTP_PORT'))).toBe(
      'EMAIL_SMTP_PORT = "x25" (email channel): expected a number',
    );
    const text = problems.join('\n');
    expect(text).not.toMatch(/received NaN|Invalid input|Too small|Too big/);
    expect(problems.filter((p) => p.startsWith('PORT '))).toHaveLength(1);
  });

  it('says when a required setting is not set', () => {
    expect(problemsOf({ BOT_URL: 'http://127.0.0.1:9/bot' })).toContain(
      'BOT_SECRET (not set): required when BOT_URL is set (requests to the bot are signed)',
    );
  });

  it('never shows a secret: secrets are hidden, passwords in URLs masked', () => {
    const secrets = {
      BOT_URL: 'http://127.0.0.1:9/bot',
      BOT_SECRET: 'plain-bot-secret-1234',
      API_KEYS: 'tiny-api-key',
      SLACK_SIGNING_SECRET: 'slk123',
      SLACK_BOT_TOKEN: 'not-a-bot-token-9876',
      TWILIO_ACCOUNT_SID: 'AC00000000000000000000000000000000',
      TWILIO_AUTH_TOKEN: 'tw auth token with spaces',
      WEBCHAT_JWT_SECRET: 'too-short-jwt-secret',
      REDIS_URL: 'http://admin:redis-pass-42@cache:6379',
      EMAIL_FROM: 'support@example.com',
      SMTP_URL: 'ftp://mailer:smtp-pass-77@relay:587',
      MAILGUN_SIGNING_KEY: 'mg key',
      EMAIL_SMTP_PORT: '2525',
    };
    const text = problemsOf(secrets).join('\n');
    for (const name of [
      'BOT_SECRET',
      'API_KEYS',
      'SLACK_SIGNING_SECRET',
      'SLACK_BOT_TOKEN',
      'TWILIO_AUTH_TOKEN',
      'WEBCHAT_JWT_SECRET',
      'MAILGUN_SIGNING_KEY',
    ] as const) {
      expect(text).toContain(`${name} = (hidden, ${secrets[name].length} characters)`);
      expect(text).not.toContain(secrets[name]);
    }
    for (const password of ['redis-pass-42', 'smtp-pass-77']) expect(text).not.toContain(password);
    expect(text).toContain('REDIS_URL = "http://***@cache:6379"');
    expect(text).toContain('SMTP_URL = "ftp://***@relay:587" (email channel)');
  });
});

describe('.env file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sb-env-'));
  afterEach(() => {
    delete process.env.SB_TEST_ONLY_IN_FILE;
    delete process.env.SB_TEST_IN_BOTH;
  });

  it('is read when present, and the environment wins over it', () => {
    const file = join(dir, '.env');
    writeFileSync(file, 'SB_TEST_ONLY_IN_FILE=from-file\nSB_TEST_IN_BOTH=from-file\n');
    process.env.SB_TEST_IN_BOTH = 'from-env';
    expect(loadEnvFile(file)).toBe(true);
    expect(process.env.SB_TEST_ONLY_IN_FILE).toBe('from-file');
    expect(process.env.SB_TEST_IN_BOTH).toBe('from-env');
  });

  it('is optional', () => {
    expect(loadEnvFile(join(dir, 'missing.env'))).toBe(false);
  });
});

describe('generated development API key', () => {
  const dir = mkdtempSync(join(tmpdir(), 'sb-key-'));
  const file = join(dir, '.switchboard', 'dev-api-key');
  afterEach(() => rmSync(join(dir, '.switchboard'), { recursive: true, force: true }));

  it('is kept in a private file and reused across restarts in development', () => {
    const first = loadConfig({}, ADAPTERS, { devKeyFile: file });
    expect(first.apiKeyGenerated).toBe(true);
    expect(first.apiKeyFile).toBe(file);
    expect(readFileSync(file, 'utf8').trim()).toBe(first.apiKeys[0]);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, '.switchboard')).mode & 0o077).toBe(0);
    const second = loadConfig({ NODE_ENV: 'development' }, ADAPTERS, { devKeyFile: file });
    expect(second.apiKeys).toEqual(first.apiKeys);
  });

  it('replaces a kept file that does not hold a generated key', () => {
    const first = loadConfig({}, ADAPTERS, { devKeyFile: file });
    writeFileSync(file, 'garbage\n');
    const second = loadConfig({}, ADAPTERS, { devKeyFile: file });
    expect(second.apiKeys[0]).not.toBe(first.apiKeys[0]);
    expect(second.apiKeys[0]).toMatch(/^sk_[A-Za-z0-9_-]{32}$/);
    expect(readFileSync(file, 'utf8').trim()).toBe(second.apiKeys[0]);
  });

  it('is neither written nor read in production', () => {
    const prod = loadConfig({ NODE_ENV: 'production' }, ADAPTERS, { devKeyFile: file });
    expect(existsSync(file)).toBe(false);
    expect(prod.apiKeyFile).toBeNull();
    const dev = loadConfig({}, ADAPTERS, { devKeyFile: file });
    const again = loadConfig({ NODE_ENV: 'production' }, ADAPTERS, { devKeyFile: file });
    expect(again.apiKeys[0]).not.toBe(dev.apiKeys[0]);
    expect(readFileSync(file, 'utf8').trim()).toBe(dev.apiKeys[0]);
  });

  it('is not involved when API_KEYS is set', () => {
    const config = loadConfig({ API_KEYS: 'a-configured-key-0123' }, ADAPTERS, { devKeyFile: file });
    expect(config.apiKeys).toEqual(['a-configured-key-0123']);
    expect(config.apiKeyFile).toBeNull();
    expect(existsSync(file)).toBe(false);
  });
});
