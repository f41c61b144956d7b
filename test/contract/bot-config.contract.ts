/**
 * The bot configuration repository conformance suite (SPEC §10): every backend stores a document as
 * the next version only when the caller's expected version is the stored one, so of any number of
 * writers racing on one version exactly one wins, and a stale version changes nothing.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { BotConfigRepo } from '../../src/bot-config/repo.js';

export interface BotConfigFixture {
  /** Two repos as two processes would have them (the embedded backend has one process: the same). */
  repos: [BotConfigRepo, BotConfigRepo];
  cleanup(): Promise<void>;
}

export function botConfigContract(name: string, make: () => Promise<BotConfigFixture>): void {
  describe(`bot configuration repository contract (${name})`, () => {
    let fx: BotConfigFixture;
    beforeEach(async () => {
      fx = await make();
    });
    afterEach(async () => {
      await fx.cleanup();
    });

    it('starts empty at version 0 and stores each write as the next version', async () => {
      const [a, b] = fx.repos;
      expect(await a.read()).toEqual({ doc: '{}', version: 0, updatedAt: null });
      expect(await a.write('{"timeoutMs":500}', 0, '2026-01-01T00:00:00.000Z')).toEqual({
        ok: true,
        version: 1,
      });
      expect(await b.read()).toEqual({
        doc: '{"timeoutMs":500}',
        version: 1,
        updatedAt: '2026-01-01T00:00:00.000Z',
      });
      expect(await b.write('{}', null, '2026-01-01T00:00:01.000Z')).toEqual({ ok: true, version: 2 });
      expect((await a.read()).version).toBe(2);
    });

    it('refuses a stale expected version and changes nothing', async () => {
      const [a, b] = fx.repos;
      await a.write('{"maxAttempts":2}', 0, '2026-01-01T00:00:00.000Z');
      expect(await b.write('{"maxAttempts":9}', 0, '2026-01-01T00:00:01.000Z')).toEqual({
        ok: false,
        version: 1,
      });
      expect(await a.write('{"maxAttempts":9}', 7, '2026-01-01T00:00:01.000Z')).toEqual({
        ok: false,
        version: 1,
      });
      expect(await a.read()).toEqual({
        doc: '{"maxAttempts":2}',
        version: 1,
        updatedAt: '2026-01-01T00:00:00.000Z',
      });
    });

    it('lets exactly one of many writers racing on one version win', async () => {
      const [a, b] = fx.repos;
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          (i % 2 ? a : b).write(`{"historyLimit":${i + 1}}`, 0, new Date().toISOString()),
        ),
      );
      const winners = results.map((r, i) => (r.ok ? i : -1)).filter((i) => i >= 0);
      expect(winners).toHaveLength(1);
      expect(results.filter((r) => !r.ok).every((r) => r.version === 1)).toBe(true);
      expect(await a.read()).toMatchObject({ doc: `{"historyLimit":${winners[0]! + 1}}`, version: 1 });
    });
  });
}
