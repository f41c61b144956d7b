/**
 * The embedded backend keeps everything in one process's memory: the gateway says so loudly, in its
 * start-up line (at warn) and on `/readyz` (a `warning` field), and says nothing of the kind on Redis.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { RedisServer, redisAvailable } from '../helpers/redis.js';

describe('on the embedded backend', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway();
  });
  afterAll(() => gw.stop());

  it('warns at start, in the one start-up line', () => {
    const lines = gw.logs.lines.filter((l) => String(l.msg).startsWith('gateway listening'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 40, backend: 'embedded' });
    expect(String(lines[0]!.warning)).toMatch(/in memory.*lost on restart.*REDIS_URL/);
    expect(String(lines[0]!.msg)).toContain(String(lines[0]!.warning));
  });

  it('says so on /readyz', async () => {
    const res = await fetch(`${gw.url}/readyz`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ status: 'ready', backend: 'embedded' });
    expect(String(body.warning)).toMatch(/in memory.*lost on restart.*REDIS_URL/);
  });
});

describe.skipIf(!redisAvailable())('on the Redis backend', () => {
  let redis: RedisServer;
  let gw: TestGateway;
  beforeAll(async () => {
    redis = await RedisServer.start();
    gw = await startGateway({ REDIS_URL: redis.url });
  });
  afterAll(async () => {
    await gw?.stop();
    await redis?.dispose();
  });

  it('starts at info and /readyz carries no warning', async () => {
    const line = gw.logs.lines.find((l) => String(l.msg).startsWith('gateway listening'));
    expect(line).toMatchObject({ level: 30, backend: 'redis' });
    expect(line).not.toHaveProperty('warning');
    const body = (await (await fetch(`${gw.url}/readyz`)).json()) as Record<string, unknown>;
    expect(body).toMatchObject({ status: 'ready', backend: 'redis' });
    expect(body).not.toHaveProperty('warning');
  });
});
