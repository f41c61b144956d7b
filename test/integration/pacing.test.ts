/**
 * The pacing room's contract (src/pacing/), run against the in-memory twins and against the Lua
 * scripts on a private redis-server with two connections standing in for two processes: slots spaced
 * per key whoever reserves them, `defer` shared, leases that expire unless renewed, and one breaker
 * state (failures, open-until, one trial) for every holder. Then Redis away and back: the forms fall
 * back to per-process state instead of failing, and the scripts work again after a restart.
 */
import calculateSlot from 'cluster-key-slot';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  MemoryBreakers,
  MemoryConcurrency,
  MemoryRateGate,
  type Pacing,
  PacingKeys,
  RedisBreakers,
  RedisConcurrency,
  RedisRateGate,
} from '../../src/pacing/index.js';
import { createRedisClient, type RedisClient, waitReady } from '../../src/store/redis/connection.js';
import { RedisServer, redisAvailable } from '../helpers/redis.js';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
/** Timer and clock granularity allowed on a shared, busy machine. */
const JITTER_MS = 15;

type Forms = Omit<Pacing, 'kind'>;

let keyN = 0;
const fresh = (name: string) => `${name}-${++keyN}`;

/**
 * The contract for two holders `a` and `b` (two processes on Redis; one shared set of twins in
 * memory, which is what one process is).
 */
function contract(name: string, make: () => Promise<{ a: Forms; b: Forms; close(): Promise<void> }>) {
  describe(name, () => {
    let a: Forms;
    let b: Forms;
    let close: () => Promise<void>;
    beforeAll(async () => {
      ({ a, b, close } = await make());
    });
    afterAll(async () => {
      a.limits.close();
      b.limits.close();
      await close();
    });

    describe('rate gate', () => {
      it('spaces one key at the interval whoever reserves, and leaves other keys alone', async () => {
        const key = fresh('chan');
        const slots: number[] = [];
        for (let i = 0; i < 8; i++) {
          const gate = i % 2 === 0 ? a.gate : b.gate;
          const at = Date.now();
          slots.push(at + (await gate.reserve(key, 100)));
        }
        expect(slots[0]! - Date.now()).toBeLessThanOrEqual(JITTER_MS);
        for (let i = 1; i < slots.length; i++) {
          expect(slots[i]! - slots[i - 1]!).toBeGreaterThanOrEqual(100 - JITTER_MS);
          expect(slots[i]! - slots[i - 1]!).toBeLessThanOrEqual(100 + JITTER_MS);
        }
        expect(await b.gate.reserve(fresh('other'), 100)).toBe(0);
      });

      it('takes fractional intervals (80 a second is 12.5 ms)', async () => {
        const key = fresh('wa');
        let last = 0;
        for (let i = 0; i < 80; i++) last = await (i % 2 ? a : b).gate.reserve(key, 12.5);
        // 79 intervals after the first slot, less the time the 80 calls took.
        expect(last).toBeGreaterThan(987 - 500);
        expect(last).toBeLessThanOrEqual(988);
      });

      it('a defer (Retry-After) in one holder closes the key for the other', async () => {
        const key = fresh('chan');
        expect(await a.gate.reserve(key, 100)).toBe(0);
        await a.gate.defer(key, Date.now() + 700);
        const wait = await b.gate.reserve(key, 100);
        expect(wait).toBeGreaterThanOrEqual(700 - JITTER_MS);
        expect(wait).toBeLessThanOrEqual(700);
        // A shorter defer never pulls a later slot forward.
        await b.gate.defer(key, Date.now() + 10);
        expect(await a.gate.reserve(key, 100)).toBeGreaterThanOrEqual(800 - 2 * JITTER_MS);
      });
    });

    describe('concurrency limit', () => {
      it('grants at most the limit over all holders and frees a slot on release', async () => {
        const key = fresh('wh');
        const mine = await a.limits.acquire(key, 3, 5);
        expect(mine).toHaveLength(3);
        expect(new Set(mine.map((l) => l.id)).size).toBe(3);
        expect(await b.limits.acquire(key, 3, 1)).toEqual([]);
        await a.limits.release(mine[0]!);
        const theirs = await b.limits.acquire(key, 3, 2);
        expect(theirs).toHaveLength(1);
        expect(await a.limits.acquire(key, 3, 1)).toEqual([]);
        // A key of its own is not affected.
        expect(await b.limits.acquire(fresh('wh'), 3, 2)).toHaveLength(2);
        for (const l of [...mine.slice(1), ...theirs]) await (theirs.includes(l) ? b : a).limits.release(l);
        expect(await b.limits.acquire(key, 3, 3)).toHaveLength(3);
      });
    });

    describe('breakers', () => {
      const settings = { threshold: 3, cooldownMs: 300 };

      it("counts every holder's failures; once open nobody is admitted until the cooldown", async () => {
        const key = fresh('wh');
        expect(await a.breakers.failure(key, settings)).toBe('closed');
        expect(await b.breakers.failure(key, settings)).toBe('closed');
        expect(await a.breakers.admit(key, 1_000)).toEqual({ state: 'closed' });
        expect(await b.breakers.failure(key, settings)).toBe('open');
        const seen = await a.breakers.admit(key, 1_000);
        expect(seen.state).toBe('open');
        expect(seen.state === 'open' && seen.retryInMs).toBeGreaterThan(300 - JITTER_MS * 4);
        expect(await b.breakers.state(key)).toBe('open');
      });

      it('after the cooldown exactly one holder gets the trial; its failure reopens, its success closes for all', async () => {
        const key = fresh('wh');
        for (let i = 0; i < 3; i++) await a.breakers.failure(key, settings);
        await sleep(320);
        expect(await b.breakers.state(key)).toBe('half-open');
        expect(await b.breakers.admit(key, 5_000)).toEqual({ state: 'trial' });
        expect(await a.breakers.admit(key, 5_000)).toMatchObject({ state: 'open', trialElsewhere: true });
        expect(await b.breakers.failure(key, settings)).toBe('open');
        const reopened = await a.breakers.admit(key, 5_000);
        expect(reopened.state).toBe('open');
        expect(reopened).not.toHaveProperty('trialElsewhere');
        await sleep(320);
        expect(await a.breakers.admit(key, 5_000)).toEqual({ state: 'trial' });
        await a.breakers.success(key);
        expect(await b.breakers.admit(key, 5_000)).toEqual({ state: 'closed' });
        // The count started over: two failures do not open it.
        await b.breakers.failure(key, settings);
        await a.breakers.failure(key, settings);
        expect(await b.breakers.state(key)).toBe('closed');
      });

      it('takes slots behind the breaker in one step: none while open, one trial once no slot is held anywhere', async () => {
        const key = fresh('wh');
        const quick = { threshold: 2, cooldownMs: 150 };
        const first = await a.limits.take(key, 2, 3, 5_000);
        expect(first).toMatchObject({ state: 'closed' });
        const held = first.state === 'open' ? [] : first.leases;
        expect(held).toHaveLength(2);
        expect(await b.limits.take(key, 2, 1, 5_000)).toEqual({ state: 'closed', leases: [] });
        await a.breakers.failure(key, quick);
        expect(await b.breakers.failure(key, quick)).toBe('open');
        await a.limits.release(held[0]!);
        // Open: a free slot is not handed out.
        expect(await b.limits.take(key, 2, 1, 5_000)).toMatchObject({ state: 'open' });
        await sleep(170);
        // Half-open, but an attempt (the other slot) is still in flight: nobody gets the trial yet.
        expect(await b.limits.take(key, 2, 2, 5_000)).toEqual({ state: 'trial', leases: [] });
        await a.limits.release(held[1]!);
        const trial = await b.limits.take(key, 2, 2, 5_000);
        expect(trial.state).toBe('trial');
        expect(trial.state !== 'open' && trial.leases).toHaveLength(1);
        expect(await a.limits.take(key, 2, 2, 5_000)).toMatchObject({ state: 'open', trialElsewhere: true });
        await b.breakers.success(key);
        if (trial.state !== 'open') await b.limits.release(trial.leases[0]!);
        const after = await a.limits.take(key, 2, 2, 5_000);
        expect(after.state === 'closed' && after.leases).toHaveLength(2);
        if (after.state !== 'open') for (const l of after.leases) await a.limits.release(l);
      });

      it('a trial whose holder died frees itself after its TTL; a cancelled one at once', async () => {
        const key = fresh('wh');
        for (let i = 0; i < 3; i++) await b.breakers.failure(key, { threshold: 3, cooldownMs: 100 });
        await sleep(120);
        expect(await a.breakers.admit(key, 200)).toEqual({ state: 'trial' });
        expect(await b.breakers.admit(key, 200)).toMatchObject({ state: 'open', trialElsewhere: true });
        await sleep(220);
        expect(await b.breakers.admit(key, 200)).toEqual({ state: 'trial' });
        await b.breakers.cancelTrial(key);
        expect(await a.breakers.admit(key, 200)).toEqual({ state: 'trial' });
      });
    });
  });
}

contract('in memory', async () => {
  const breakers = new MemoryBreakers();
  const forms: Forms = {
    gate: new MemoryRateGate(),
    limits: new MemoryConcurrency(breakers),
    breakers,
  };
  return { a: forms, b: forms, close: async () => undefined };
});

const enabled = redisAvailable();
let server: RedisServer | undefined;
const clients: RedisClient[] = [];

async function connect(): Promise<RedisClient> {
  const redis = createRedisClient(server!.url, { commandTimeoutMs: 1_000, connectTimeoutMs: 1_000 });
  clients.push(redis);
  await waitReady(redis, 5_000);
  return redis;
}

async function connect2(url: string): Promise<RedisClient> {
  const redis = createRedisClient(url, { commandTimeoutMs: 1_000, connectTimeoutMs: 1_000 });
  clients.push(redis);
  await waitReady(redis, 5_000);
  return redis;
}

function formsOn(redis: RedisClient, prefix: string, opts = {}): Forms & { keys: PacingKeys } {
  const keys = new PacingKeys(redis, prefix);
  const breakers = new RedisBreakers(keys);
  return {
    keys,
    gate: new RedisRateGate(keys),
    limits: new RedisConcurrency(keys, opts, breakers),
    breakers,
  };
}

describe.skipIf(!enabled)('on Redis', () => {
  beforeAll(async () => {
    server = await RedisServer.start({ fsync: 'everysec' });
  });
  afterAll(async () => {
    for (const c of clients) c.disconnect();
    await server?.dispose();
  });

  contract('two connections (two processes)', async () => {
    const [ra, rb] = [await connect(), await connect()];
    return { a: formsOn(ra, 'pt'), b: formsOn(rb, 'pt'), close: async () => undefined };
  });

  it('keeps keys under the prefix, one hash tag each, expiring once their slot has passed', async () => {
    const redis = await connect();
    const f = formsOn(redis, 'px');
    await f.gate.reserve('slack:T1:C1', 1_000);
    const key = f.keys.key('slack:T1:C1', 'r');
    expect(key).toBe('px:{px:pace:slack:T1:C1}:r');
    const ttl = await redis.pttl(key);
    expect(ttl).toBeGreaterThan(1_000);
    expect(ttl).toBeLessThanOrEqual(2_000);
    // take-2 touches a key's leases and breaker together: one Cluster slot (SPEC §4.7).
    const pair = [f.keys.key('wh:01J', 'c'), f.keys.key('wh:01J', 'b')];
    expect(calculateSlot.generateMulti(pair)).not.toBe(-1);
    // A brace in a key cannot move it out of its hash tag.
    expect(f.keys.key('x}{y', 'r')).toBe('px:{px:pace:xy}:r');
    f.limits.close();
  });

  it('frees the leases of a holder that stopped renewing (it died) after their TTL, not before', async () => {
    const dead = formsOn(await connect(), 'pl', { leaseTtlMs: 300, renewEveryMs: 60_000 });
    const alive = formsOn(await connect(), 'pl', { leaseTtlMs: 300, renewEveryMs: 50 });
    const held = await alive.limits.acquire('wh:1', 3, 1);
    expect(held).toHaveLength(1);
    expect(await dead.limits.acquire('wh:1', 3, 2)).toHaveLength(2);
    dead.limits.close();
    expect(await alive.limits.acquire('wh:1', 3, 1)).toEqual([]);
    await sleep(500);
    // The dead holder's two expired; the renewed one is still held.
    const after = await alive.limits.acquire('wh:1', 3, 3);
    expect(after).toHaveLength(2);
    alive.limits.close();
  });

  it('while Redis is down every form falls back to this process (no throw); after a restart the scripts run again', async () => {
    const own = await RedisServer.start({ fsync: 'everysec' });
    try {
      const redis = createRedisClient(own.url, { commandTimeoutMs: 500, connectTimeoutMs: 500 });
      clients.push(redis);
      await waitReady(redis, 5_000);
      const f = formsOn(redis, 'pd');
      expect(await f.gate.reserve('k', 1_000)).toBe(0);
      await own.stop(true);
      // Paced per process now: the second reserve waits behind the first, locally.
      expect(await f.gate.reserve('k', 1_000)).toBe(0);
      expect(await f.gate.reserve('k', 1_000)).toBeGreaterThan(900);
      await f.gate.defer('k', Date.now() + 5_000);
      expect(await f.limits.acquire('wh', 1, 2)).toHaveLength(1);
      expect(await f.limits.acquire('wh', 1, 1)).toHaveLength(0);
      expect(await f.breakers.failure('wh', { threshold: 1, cooldownMs: 1_000 })).toBe('open');
      expect((await f.breakers.admit('wh', 1_000)).state).toBe('open');
      // take looks behind the same local breaker.
      expect(await f.limits.take('wh', 1, 1, 1_000)).toMatchObject({ state: 'open' });
      expect(await f.limits.take('wh3', 1, 1, 1_000)).toMatchObject({ state: 'closed', leases: [{}] });
      await own.restart();
      await waitReady(redis, 10_000);
      // A restarted Redis has an empty script cache: the scripts load again and hold across holders.
      const other = formsOn(await connect2(own.url), 'pd');
      expect(await f.gate.reserve('k2', 1_000)).toBe(0);
      expect(await other.gate.reserve('k2', 1_000)).toBeGreaterThan(900);
      expect(await f.limits.acquire('wh2', 1, 1)).toHaveLength(1);
      expect(await other.limits.acquire('wh2', 1, 1)).toHaveLength(0);
      expect(await f.breakers.failure('wh2', { threshold: 1, cooldownMs: 1_000 })).toBe('open');
      expect((await other.breakers.admit('wh2', 1_000)).state).toBe('open');
      other.limits.close();
      f.limits.close();
    } finally {
      await own.dispose();
    }
  });
});
