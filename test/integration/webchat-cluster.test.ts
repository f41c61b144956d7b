/**
 * Web chat across gateway processes sharing one Redis (SPEC §1, §7): the socket is held by one process
 * whose engine is stopped, the bot's work happens in another OS process, and the reply still reaches the
 * socket over Redis pub/sub. Also: two tabs on two processes share one conversation, and demo tokens
 * minted by one process are accepted by another (the demo secret lives in Redis).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Message } from '../../src/core/model.js';
import { type SpawnedGateway, spawnGateway, startGateway, type TestGateway } from '../helpers/gateway.js';
import { RedisServer, redisAvailable } from '../helpers/redis.js';
import { ChatClient, ORIGIN, until, visitorToken, WEBCHAT_SECRET } from '../helpers/webchat-client.js';

const enabled = redisAvailable();

describe.skipIf(!enabled)('web chat across processes (Redis)', () => {
  let redis: RedisServer;
  let worker: SpawnedGateway;
  let holder: TestGateway;
  const clients: ChatClient[] = [];
  const env = () => ({
    REDIS_URL: redis.url,
    WEBCHAT_JWT_SECRET: WEBCHAT_SECRET,
    WEBCHAT_ALLOWED_ORIGINS: ORIGIN,
  });

  beforeAll(async () => {
    redis = await RedisServer.start();
    [worker, holder] = await Promise.all([spawnGateway(env()), startGateway(env())]);
    // The holder only holds sockets: its engine never claims, so every reply is computed by the worker.
    await holder.gateway.deps.engine.stop(0);
  });

  afterAll(async () => {
    await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
    await holder?.stop();
    await worker?.kill();
    await redis?.dispose();
  });

  async function connect(base: string, sub: string): Promise<ChatClient> {
    const client = await ChatClient.ready(base, { token: visitorToken({ sub }) });
    clients.push(client);
    return client;
  }

  it('a reply computed by another process reaches the socket', async () => {
    const tab = await connect(holder.url, 'cluster-visitor-1');
    const ack = await tab.say('across processes');
    const reply = await tab.botSays('You said: across processes');
    expect(reply.message.replyTo).toBe(ack.id);
    // The typing indicator went on and off across the bus too.
    await tab.next('typing', (f) => f.on === false, tab.frames.indexOf(reply));
    // Processed by the worker: the holder's engine is stopped and never claimed anything.
    const conversationId = tab.frames[0]!.conversationId;
    const stored = (await (
      await holder.api(`/v1/conversations/${conversationId}/messages/${ack.id}`)
    ).json()) as Message;
    expect(stored.processing?.state).toBe('done');
    // The holder handed it to the socket and recorded that, whichever process sent it.
    await until(async () => {
      const m = (await (
        await worker.api(`/v1/conversations/${conversationId}/messages/${reply.message.id}`)
      ).json()) as Message;
      return m.delivery?.status === 'delivered';
    });
  });

  it('two tabs of one visitor on two processes see one conversation', async () => {
    const a = await connect(holder.url, 'cluster-visitor-2');
    const b = await connect(worker.url, 'cluster-visitor-2');
    expect(b.frames[0]!.conversationId).toBe(a.frames[0]!.conversationId);
    const ack = await b.say('typed in tab b');
    await a.next('message', (f) => f.message.id === ack.id);
    await a.botSays('You said: typed in tab b');
    await b.botSays('You said: typed in tab b');
    a.send({ type: 'read', seq: ack.seq + 1 });
    await b.next('receipt', (f) => f.status === 'read');
  });
});

describe.skipIf(!enabled)('demo mode across processes (Redis)', () => {
  let redis: RedisServer;
  let one: TestGateway;
  let two: TestGateway;

  beforeAll(async () => {
    redis = await RedisServer.start();
    one = await startGateway({ REDIS_URL: redis.url });
    two = await startGateway({ REDIS_URL: redis.url });
  });

  afterAll(async () => {
    await one?.stop();
    await two?.stop();
    await redis?.dispose();
  });

  it('a demo token minted by one process opens a socket on another', async () => {
    const res = await fetch(`${one.url}/webchat/demo-token`, { method: 'POST' });
    expect(res.status).toBe(200);
    const { token, visitorId } = (await res.json()) as { token: string; visitorId: string };
    expect(visitorId).toMatch(/^v_/);
    // No allowlist: a non-browser client (no Origin) is let through to the token check.
    const client = await ChatClient.ready(two.url, { token, origin: null });
    expect(client.frames[0]).toMatchObject({ type: 'ready', visitorId });
    await client.say('demo');
    await client.botSays('You said: demo');
    await client.end();
  });
});
