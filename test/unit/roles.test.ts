/** `ROLE` (docs/running.md#roles): its values, what each runs, and the refusal on the embedded backend. */
import { describe, expect, it } from 'vitest';
import { ADAPTERS } from '../../adapters/index.js';
import { ConfigError, loadConfig } from '../../config/load.js';
import { createGateway } from '../../src/gateway.js';
import { createLogger } from '../../src/logger.js';
import { rolePlan } from '../../src/roles.js';
import { MemoryStore } from '../../src/store/memory.js';

const REDIS = { REDIS_URL: 'redis://127.0.0.1:6379' };

function problems(env: Record<string, string>): string[] {
  try {
    loadConfig(env, ADAPTERS);
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  return [];
}

describe('ROLE', () => {
  it('defaults to all, on either backend', () => {
    expect(loadConfig({}, ADAPTERS).ROLE).toBe('all');
    expect(loadConfig(REDIS, ADAPTERS).ROLE).toBe('all');
    expect(loadConfig({ ROLE: 'all' }, ADAPTERS).ROLE).toBe('all');
  });

  it('accepts web and worker with REDIS_URL', () => {
    expect(loadConfig({ ...REDIS, ROLE: 'web' }, ADAPTERS).ROLE).toBe('web');
    expect(loadConfig({ ...REDIS, ROLE: 'worker' }, ADAPTERS).ROLE).toBe('worker');
  });

  it('refuses web and worker on the embedded backend, naming the setting and the way out', () => {
    for (const role of ['web', 'worker']) {
      const found = problems({ ROLE: role });
      expect(found).toHaveLength(1);
      expect(found[0]).toContain(`ROLE = "${role}"`);
      expect(found[0]).toContain('needs REDIS_URL');
      expect(found[0]).toContain('use ROLE=all');
    }
  });

  it('refuses an unknown role with the values it accepts', () => {
    const found = problems({ ...REDIS, ROLE: 'api' });
    expect(found).toHaveLength(1);
    expect(found[0]).toMatch(/^ROLE = "api": expected one of all, web, worker$/);
  });

  it('splits the work: web takes traffic and works on nothing, worker the reverse, all both', () => {
    expect(rolePlan('web')).toEqual({
      role: 'web',
      traffic: true,
      listeners: true,
      engine: false,
      dispatcher: false,
      jobs: false,
    });
    expect(rolePlan('worker')).toEqual({
      role: 'worker',
      traffic: false,
      listeners: false,
      engine: true,
      dispatcher: true,
      jobs: true,
    });
    const all = rolePlan('all');
    expect(Object.values(all).filter((v) => v === false)).toEqual([]);
  });

  it('a gateway given an embedded store refuses a split role too (fail closed)', async () => {
    for (const role of ['web', 'worker']) {
      const config = loadConfig({ ...REDIS, ROLE: role }, ADAPTERS);
      const store = new MemoryStore({ maxPending: 10, retryAfterS: 1 });
      await expect(createGateway(config, createLogger('silent'), { store })).rejects.toThrow(
        `ROLE=${role} runs only part of the gateway and needs REDIS_URL`,
      );
    }
  });
});
