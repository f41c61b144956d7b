/**
 * Liveness, readiness and metrics: `/readyz` reports an unreachable Redis as not ready and recovers
 * by itself; `/metrics` exposes the gateway's counters in Prometheus text format.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from '../helpers/eventually.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { RedisServer, redisAvailable } from '../helpers/redis.js';

describe('health endpoints on the embedded backend', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway();
  });
  afterAll(() => gw.stop());

  it('is live and ready without authentication', async () => {
    const live = await fetch(`${gw.url}/healthz`);
    expect(live.status).toBe(200);
    expect(await live.json()).toEqual({ status: 'ok' });
    const ready = await fetch(`${gw.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ status: 'ready', backend: 'embedded', store: 'ok' });
  });

  it('counts accepted messages in /metrics', async () => {
    const session = await gw.api('/v1/sessions', { method: 'POST', json: {} });
    const { conversationId } = (await session.json()) as { conversationId: string };
    await gw.api('/v1/messages', { method: 'POST', json: { conversationId, text: 'count me' } });
    const metrics = await fetch(`${gw.url}/metrics`);
    expect(metrics.status).toBe(200);
    expect(metrics.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await metrics.text();
    expect(text).toMatch(/^switchboard_messages_accepted_total\{channel="api"\} 1$/m);
    expect(text).toMatch(/^switchboard_messages_processed_total\{outcome="done"\} 1$/m);
    expect(text).toContain('switchboard_queue_pending');
  });
});

describe.skipIf(!redisAvailable())('readiness on the Redis backend', () => {
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

  it('reports Redis unreachable as not ready, and ready again once it is back', async () => {
    expect((await fetch(`${gw.url}/readyz`)).status).toBe(200);
    await redis.stop(true);
    const down = await fetch(`${gw.url}/readyz`);
    expect(down.status).toBe(503);
    expect(down.headers.get('retry-after')).toBe('1');
    expect(await down.json()).toMatchObject({ status: 'not ready', backend: 'redis', store: 'unreachable' });
    // Liveness does not depend on Redis: restarting the process would not help.
    expect((await fetch(`${gw.url}/healthz`)).status).toBe(200);
    await redis.restart();
    await eventually(async () => (await fetch(`${gw.url}/readyz`)).status === 200, 15_000, 200);
  });
});
