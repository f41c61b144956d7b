/**
 * The bot configuration across gateway processes sharing one Redis (SPEC §10): a change made through
 * one process is applied by the others within 2 s, through the bus and, with the announcement
 * suppressed, through the periodic re-read alone; a stale If-Match is refused whichever process took
 * the newer write; a process started later runs with the stored configuration from the start.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Message } from '../../src/core/model.js';
import { BOT_SECRET, FakeBot } from '../fakes/bot.js';
import { eventually } from '../helpers/eventually.js';
import { type SpawnedGateway, spawnGateway, startGateway, type TestGateway } from '../helpers/gateway.js';
import { RedisServer, redisAvailable } from '../helpers/redis.js';

/** SPEC §10: every process applies a change within this long. */
const PROPAGATION_MS = 2_000;

type Api = (path: string, init?: RequestInit & { json?: unknown }) => Promise<Response>;

/** The URL a process's bot is running with, by its own health answer. */
async function runningUrl(api: Api): Promise<string | null> {
  const res = await api('/v1/bot/health');
  return ((await res.json()) as { url: string | null }).url;
}

/** Milliseconds until `api`'s process runs with `url`. */
async function timeUntilRunning(api: Api, url: string, since: number): Promise<number> {
  await eventually(async () => (await runningUrl(api)) === url, 5_000, 25);
  return Date.now() - since;
}

async function converse(api: Api, text: string): Promise<Message[]> {
  const session = await api('/v1/sessions', { method: 'POST', json: {} });
  const { conversationId } = (await session.json()) as { conversationId: string };
  const res = await api('/v1/messages', { method: 'POST', json: { conversationId, text, wait: 10 } });
  expect(res.status).toBe(200);
  return ((await res.json()) as { replies: Message[] }).replies;
}

describe.skipIf(!redisAvailable())('bot configuration across processes (Redis)', () => {
  let redis: RedisServer | undefined;
  let redisUrl = process.env.REDIS_URL ?? '';
  let botA: FakeBot;
  let botB: FakeBot;
  let env: Record<string, string>;
  const spawned: SpawnedGateway[] = [];
  let quiet: TestGateway | undefined;

  beforeAll(async () => {
    if (!process.env.REDIS_URL) {
      redis = await RedisServer.start();
      redisUrl = redis.url;
    }
    [botA, botB] = await Promise.all([FakeBot.start(), FakeBot.start()]);
    env = {
      REDIS_URL: redisUrl,
      REDIS_KEY_PREFIX: `botcfg${process.pid}`,
      BOT_URL: botA.url,
      BOT_SECRET,
      BOT_MAX_ATTEMPTS: '1',
    };
    spawned.push(...(await Promise.all([spawnGateway(env), spawnGateway(env)])));
  }, 60_000);

  afterAll(async () => {
    await quiet?.stop();
    await Promise.all(spawned.map((g) => g.kill('SIGTERM')));
    await Promise.all([botA.close(), botB.close()]);
    await redis?.dispose();
  });

  it('a PATCH through one process moves the other to the new bot within 2 s', async () => {
    const [a, b] = spawned as [SpawnedGateway, SpawnedGateway];
    expect(await runningUrl(b.api)).toBe(botA.url);
    const started = Date.now();
    const res = await a.api('/v1/bot', { method: 'PATCH', json: { url: botB.url } });
    expect(res.status).toBe(200);
    expect(await timeUntilRunning(b.api, botB.url, started)).toBeLessThan(PROPAGATION_MS);
    // Whichever process takes them, messages now go to the new bot.
    const before = botA.calls.length;
    for (const text of ['one', 'two', 'three', 'four']) {
      expect((await converse(b.api, text)).map((r) => r.text)).toEqual([`re: ${text}`]);
    }
    expect(botB.calls.map((c) => c.text)).toEqual(expect.arrayContaining(['one', 'two', 'three', 'four']));
    expect(botA.calls.length).toBe(before);
  });

  it('with the announcement suppressed, the periodic re-read alone applies a change within 2 s', async () => {
    const [a, b] = spawned as [SpawnedGateway, SpawnedGateway];
    // Both run with bot B (the test before moved them), so the change below is one to notice.
    expect(await runningUrl(a.api)).toBe(botB.url);
    expect(await runningUrl(b.api)).toBe(botB.url);
    // A third process that writes without announcing: the others can only learn of it by re-reading.
    quiet = await startGateway(env, { botConfig: { announce: false }, startEngine: false });
    const started = Date.now();
    const res = await quiet.api('/v1/bot', { method: 'PATCH', json: { url: botA.url } });
    expect(res.status).toBe(200);
    const [forA, forB] = await Promise.all([
      timeUntilRunning(a.api, botA.url, started),
      timeUntilRunning(b.api, botA.url, started),
    ]);
    expect(forA).toBeLessThan(PROPAGATION_MS);
    expect(forB).toBeLessThan(PROPAGATION_MS);
    const replies = await converse(b.api, 'back to A');
    expect(replies.map((r) => r.text)).toEqual(['re: back to A']);
    expect(botA.calls.at(-1)?.text).toBe('back to A');
  });

  it('refuses a stale If-Match whichever process took the newer write', async () => {
    const [a, b] = spawned as [SpawnedGateway, SpawnedGateway];
    const read = await a.api('/v1/bot');
    const etag = read.headers.get('etag')!;
    const first = await b.api('/v1/bot', {
      method: 'PATCH',
      json: { timeoutMs: 4000 },
      headers: { 'if-match': etag },
    });
    expect(first.status).toBe(200);
    const second = await a.api('/v1/bot', {
      method: 'PATCH',
      json: { url: botB.url },
      headers: { 'if-match': etag },
    });
    expect(second.status).toBe(412);
    expect(((await second.json()) as { code: string }).code).toBe('GW_ERR_PRECONDITION_FAILED');
    // A GET through either process reads the store: both answer the newer version.
    for (const g of [a, b]) {
      const now = await g.api('/v1/bot');
      expect(now.headers.get('etag')).toBe(first.headers.get('etag'));
      expect(await now.json()).toMatchObject({ url: botA.url, timeoutMs: 4000 });
    }
    await new Promise((r) => setTimeout(r, PROPAGATION_MS));
    expect(await runningUrl(a.api)).toBe(botA.url);
    expect(await runningUrl(b.api)).toBe(botA.url);
  });

  it('a process started later runs with the stored configuration, over its environment', async () => {
    await spawned[0]!.api('/v1/bot', { method: 'PATCH', json: { url: botB.url } });
    const late = await spawnGateway(env);
    spawned.push(late);
    expect(await runningUrl(late.api)).toBe(botB.url);
    const config = (await (await late.api('/v1/bot')).json()) as { url: string; stored: string[] };
    expect(config).toMatchObject({ url: botB.url, stored: ['timeoutMs', 'url'] });
  }, 30_000);
});
