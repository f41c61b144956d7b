/**
 * Acknowledged means replicated, on real Sentinel: a forced failover (SENTINEL FAILOVER) under load
 * through two gateway processes loses no acknowledged message, and the bot sees each once, in seq order.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BOT_SECRET, FakeBot } from '../fakes/bot.js';
import { type SpawnedGateway, spawnGateway } from '../helpers/gateway.js';
import { redisAvailable } from '../helpers/redis.js';
import { failoverLoad, SentinelRig } from '../helpers/redis-rigs.js';

const enabled = redisAvailable();

describe.skipIf(!enabled)('SENTINEL FAILOVER under load', () => {
  let rig: SentinelRig;
  let bot: FakeBot;
  const procs: SpawnedGateway[] = [];

  beforeAll(async () => {
    [rig, bot] = await Promise.all([SentinelRig.start(), FakeBot.start()]);
  }, 60_000);

  afterAll(async () => {
    await Promise.all(procs.map((p) => p.kill('SIGKILL')));
    await bot?.close();
    await rig?.dispose();
  });

  it('loses, repeats and reorders no acknowledged message', async () => {
    const env = {
      REDIS_URL: rig.url,
      BOT_URL: bot.url,
      BOT_SECRET,
      LEASE_MS: '2000',
      QUEUE_PARTITIONS: '4',
      LOG_LEVEL: 'warn',
    };
    procs.push(...(await Promise.all([spawnGateway(env), spawnGateway(env)])));
    bot.mode = { kind: 'echo', delayMs: () => Math.floor(Math.random() * 20) };
    const before = await rig.masterPort();
    const report = await failoverLoad({
      gateways: procs,
      bot,
      conversations: 30,
      messages: 5,
      during: () => rig.failover(),
      deadlineMs: 50_000,
    });
    expect(await rig.masterPort()).not.toBe(before);
    expect(report.acknowledged).toBe(150);
    expect(report.lost).toEqual([]);
    expect(report.duplicated).toEqual([]);
    expect(report.reordered).toEqual([]);
    expect(report.without503RetryAfter).toBe(0);
    expect(Object.keys(report.statuses).filter((s) => s !== '503' && s !== 'network')).toEqual([]);
  }, 80_000);
});
