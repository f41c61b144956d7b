/**
 * Acknowledged means replicated, on real Sentinel (1 master, 1 replica, 3 sentinels): through a forced
 * failover (SENTINEL FAILOVER) and a paused master (SIGSTOP until its replica is promoted, then
 * SIGCONT) under load from two gateway processes, each message sent to both at once, no acknowledged
 * message is lost, and the bot sees each once, in seq order.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BOT_SECRET, FakeBot } from '../fakes/bot.js';
import { expectClean } from '../helpers/failover-report.js';
import { type SpawnedGateway, spawnGateway } from '../helpers/gateway.js';
import { redisAvailable } from '../helpers/redis.js';
import { failoverLoad, SentinelRig } from '../helpers/redis-rigs.js';

const enabled = redisAvailable();

describe.skipIf(!enabled)('Sentinel failover under load', () => {
  let rig: SentinelRig;
  let bot: FakeBot;
  const procs: SpawnedGateway[] = [];

  beforeAll(async () => {
    [rig, bot] = await Promise.all([SentinelRig.start(), FakeBot.start()]);
    const env = {
      REDIS_URL: rig.url,
      BOT_URL: bot.url,
      BOT_SECRET,
      // Longer than a failover takes here (detection, promotion, the old master's return as a replica),
      // as the default 30 s is in production: a lease that runs out mid-failover hands its message to
      // the bot a second time (docs/replication.md).
      LEASE_MS: '15000',
      QUEUE_PARTITIONS: '4',
      LOG_LEVEL: 'warn',
    };
    procs.push(...(await Promise.all([spawnGateway(env), spawnGateway(env)])));
    bot.mode = { kind: 'echo', delayMs: () => Math.floor(Math.random() * 20) };
  }, 60_000);

  afterAll(async () => {
    await Promise.all(procs.map((p) => p.kill('SIGKILL')));
    await bot?.close();
    await rig?.dispose();
  });

  it('loses, repeats and reorders nothing through SENTINEL FAILOVER', async () => {
    const before = await rig.masterPort();
    const report = await failoverLoad({
      gateways: procs,
      bot,
      conversations: 20,
      messages: 5,
      during: () => rig.failover(),
      deadlineMs: 30_000,
    });
    expect(await rig.masterPort()).not.toBe(before);
    expectClean(report);
  }, 80_000);

  it('loses, repeats and reorders nothing when the master is paused until its replica is promoted', async () => {
    await rig.settled({ rejoin: true });
    const before = await rig.masterPort();
    const report = await failoverLoad({
      gateways: procs,
      bot,
      conversations: 20,
      messages: 5,
      during: () => rig.pauseMaster(),
      deadlineMs: 30_000,
    });
    expect(await rig.masterPort()).not.toBe(before);
    expectClean(report);
  }, 90_000);
});
