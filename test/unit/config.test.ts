import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ADAPTERS } from '../../adapters/index.js';
import { ConfigError, loadConfig } from '../../config/load.js';
import { coreSchema } from '../../config/schema.js';

const envExample = readFileSync(new URL('../../config/env.example', import.meta.url), 'utf8');
const documented = new Set(
  [...envExample.matchAll(/^#?\s*([A-Z][A-Z0-9_]+)=/gm)].map((m) => m[1]).filter((n): n is string => !!n),
);

describe('configuration', () => {
  it('documents every setting in config/env.example, and nothing else', () => {
    const known = new Set([...Object.keys(coreSchema.shape), ...ADAPTERS.flatMap((a) => a.settings)]);
    expect([...known].filter((k) => !documented.has(k)).sort()).toEqual([]);
    expect([...documented].filter((k) => !known.has(k)).sort()).toEqual([]);
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
