/**
 * The batched per-key counter behind the `/v1` rate limit (src/http/rate-limit.ts, docs/limits.md):
 * far from the limit it reserves tokens in batches (few counter calls), near it every request is
 * counted, and two processes sharing one counter let exactly the limit through between them.
 */
import { RateLimiterMemory } from 'rate-limiter-flexible';
import { describe, expect, it } from 'vitest';
import { KeyRateLimiter, MAX_BATCH } from '../../src/http/rate-limit.js';

function counted(points: number): { limiter: RateLimiterMemory; calls: () => number } {
  const limiter = new RateLimiterMemory({ points, duration: 60 });
  let calls = 0;
  const consume = limiter.consume.bind(limiter);
  limiter.consume = (key, n, options) => {
    calls++;
    return consume(key, n, options);
  };
  return { limiter, calls: () => calls };
}

async function take(limiter: KeyRateLimiter, key: string) {
  return await limiter.check(key);
}

describe('KeyRateLimiter', () => {
  it('asks the shared counter about once per batch far from the limit', async () => {
    const { limiter, calls } = counted(100_000_000);
    const keyed = new KeyRateLimiter(limiter, 100_000_000);
    for (let i = 0; i < 10_000; i++) expect((await take(keyed, 'k')).allowed).toBe(true);
    expect(calls()).toBeLessThanOrEqual(Math.ceil(10_000 / MAX_BATCH) + 2);
  });

  it('lets exactly the limit through two processes sharing one counter, then refuses both', async () => {
    const { limiter } = counted(40);
    const a = new KeyRateLimiter(limiter, 40);
    const b = new KeyRateLimiter(limiter, 40);
    let allowed = 0;
    for (let i = 0; i < 100; i++) {
      const v = await take(i % 3 === 0 ? b : a, 'k');
      if (v.allowed) allowed++;
      expect(v.remaining).toBeGreaterThanOrEqual(0);
    }
    expect(allowed).toBe(40);
    const refused = await take(b, 'k');
    expect(refused.allowed).toBe(false);
    expect(refused.resetMs).toBeGreaterThan(0);
    expect(refused.resetMs).toBeLessThanOrEqual(60_000);
  });

  it('counts keys apart', async () => {
    const { limiter } = counted(2);
    const keyed = new KeyRateLimiter(limiter, 2);
    expect((await take(keyed, 'one')).allowed).toBe(true);
    expect((await take(keyed, 'one')).allowed).toBe(true);
    expect((await take(keyed, 'one')).allowed).toBe(false);
    expect((await take(keyed, 'two')).allowed).toBe(true);
  });
});
