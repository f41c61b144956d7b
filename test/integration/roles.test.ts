/**
 * `ROLE=web` and `ROLE=worker` as separate OS processes on one Redis (docs/running.md#roles): the web
 * process takes webhooks, the API and web chat and processes nothing by itself; the worker answers
 * health and metrics only and does the bot work and the outbound webhooks. The engine suite's order
 * and crash checks (engine-cluster.test.ts) run through the pair, and a split role refuses the
 * embedded backend.
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BOT_SECRET, FakeBot } from '../fakes/bot.js';
import { ACCOUNT_SID, AUTH_TOKEN } from '../fakes/twilio-api.js';
import { eventually } from '../helpers/eventually.js';
import { API_KEY, type SpawnedGateway, spawnGateway } from '../helpers/gateway.js';
import {
  allMessages,
  expectOnceInOrder,
  expectOneReplyEach,
  pool,
  session,
} from '../helpers/order-checks.js';
import { RedisServer, redisAvailable } from '../helpers/redis.js';
import { ChatClient, ORIGIN, visitorToken, WEBCHAT_SECRET } from '../helpers/webchat-client.js';
import { WebhookReceiver } from '../helpers/webhook-receiver.js';

const enabled = redisAvailable();
const MAIN = fileURLToPath(new URL('../../src/main.ts', import.meta.url));

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The start-up line of a spawned process, parsed. */
function listening(proc: SpawnedGateway): Record<string, unknown> | undefined {
  return proc.output
    .join('')
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .find((l) => String(l.msg).startsWith('gateway listening'));
}

describe.skipIf(!enabled)('web and worker roles across processes (Redis)', () => {
  let redis: RedisServer;
  let bot: FakeBot;
  let receiver: WebhookReceiver;
  const procs: SpawnedGateway[] = [];
  let prefixN = 0;

  const env = (role: 'web' | 'worker', extra: Record<string, string> = {}) => ({
    ROLE: role,
    REDIS_URL: redis.url,
    BOT_URL: bot.url,
    BOT_SECRET,
    BOT_TIMEOUT_MS: '20000',
    WEBHOOKS_ALLOW_PRIVATE: 'true',
    WEBCHAT_JWT_SECRET: WEBCHAT_SECRET,
    WEBCHAT_ALLOWED_ORIGINS: ORIGIN,
    ...extra,
  });

  async function start(role: 'web' | 'worker', extra: Record<string, string>): Promise<SpawnedGateway> {
    const proc = await spawnGateway(env(role, extra));
    procs.push(proc);
    return proc;
  }

  beforeAll(async () => {
    redis = await RedisServer.start();
    bot = await FakeBot.start();
    receiver = await WebhookReceiver.start();
  });

  afterAll(async () => {
    await Promise.all(procs.map((p) => p.kill('SIGKILL')));
    await receiver?.close();
    await bot?.close();
    await redis?.dispose();
  });

  it('the web process accepts but processes nothing; a worker started later answers everything and sends the webhooks', async () => {
    const prefix = `r${++prefixN}`;
    const web = await start('web', { REDIS_KEY_PREFIX: prefix });
    expect(await eventually(() => listening(web))).toMatchObject({ role: 'web', backend: 'redis' });
    bot.calls.length = 0;
    bot.mode = { kind: 'echo' };
    receiver.received.length = 0;
    const hook = await web.api('/v1/webhooks', {
      method: 'POST',
      json: { url: `${receiver.url}/hook`, events: ['message.created'] },
    });
    expect(hook.status).toBe(201);
    const subscription = (await hook.json()) as { id: string; secret: string };
    receiver.secrets = [subscription.secret];

    const conversations = await Promise.all(Array.from({ length: 5 }, () => session(web.url)));
    const ids: string[] = [];
    for (const conversationId of conversations) {
      for (let m = 0; m < 2; m++) {
        const res = await web.api('/v1/messages', {
          method: 'POST',
          json: { conversationId, text: `q${m}`, wait: 0 },
        });
        expect(res.status).toBe(202);
        ids.push(((await res.json()) as { message: { id: string } }).message.id);
      }
    }
    // Even a request that waits gets no answer from the web process itself.
    const waited = await web.api('/v1/messages', {
      method: 'POST',
      json: { conversationId: conversations[0], text: 'q2', wait: 1 },
    });
    expect(waited.status).toBe(202);
    await waited.body?.cancel();
    await sleep(1_500);
    expect(bot.calls).toEqual([]);
    for (const conversationId of conversations) {
      const users = (await allMessages(web.url, conversationId)).filter((m) => m.type === 'user');
      expect(
        users.map((u) => u.processing?.state),
        'nothing leaves the queue without a worker',
      ).toEqual(users.map(() => 'queued'));
    }
    // The web process queued the webhook deliveries of the accepted messages but sent none.
    const queued = await web.api(`/v1/webhooks/${subscription.id}/deliveries?take=200`);
    const { items } = (await queued.json()) as { items: Array<{ status: string; attempts: number }> };
    expect(items).toHaveLength(11);
    expect(items.every((d) => d.status === 'pending' && d.attempts === 0)).toBe(true);
    expect(receiver.received).toEqual([]);

    const worker = await start('worker', { REDIS_KEY_PREFIX: prefix });
    expect(await eventually(() => listening(worker))).toMatchObject({ role: 'worker', backend: 'redis' });
    await eventually(() => new Set(bot.calls.map((c) => c.messageId)).size === 11, 20_000, 100);
    for (const conversationId of conversations) {
      const msgs = await allMessages(web.url, conversationId);
      const users = msgs.filter((m) => m.type === 'user');
      expect(users.every((u) => u.processing?.state === 'done')).toBe(true);
      for (const u of users) expect(msgs.filter((m) => m.replyTo === u.id)).toHaveLength(1);
    }
    // Delivered by the worker's dispatcher: 11 customer messages and 11 replies, each verified.
    await eventually(() => receiver.accepted.length >= 22, 20_000, 100);
    expect(receiver.unverified).toEqual([]);
    expect(new Set(receiver.accepted.map((d) => d.webhookId)).size).toBe(22);

    // With a worker running, the API's wait on the web process ends with the worker's reply.
    const answered = await web.api('/v1/messages', {
      method: 'POST',
      json: { conversationId: conversations[1], text: 'now', wait: 10 },
    });
    expect(answered.status).toBe(200);
    const body = (await answered.json()) as { replies: Array<{ text: string }> };
    expect(body.replies.map((r) => r.text)).toEqual(['re: now']);
    // A delivery queued by the web process is announced on the bus, so the worker sends it at once
    // instead of at its next poll (every second): five in a row each arrive well inside that second.
    bot.mode = { kind: 'hang' };
    const lags: number[] = [];
    for (let i = 0; i < 5; i++) {
      const res = await web.api('/v1/messages', {
        method: 'POST',
        json: { conversationId: conversations[2 + (i % 3)], text: `lag${i}`, wait: 0 },
      });
      const accepted = Date.now();
      const { message } = (await res.json()) as { message: { id: string } };
      const arrived = await eventually(
        () =>
          receiver.accepted.find(
            (d) => (d.event.data as { message?: { id: string } }).message?.id === message.id,
          ),
        5_000,
        5,
      );
      lags.push(arrived.at - accepted);
    }
    expect(
      lags.filter((ms) => ms > 500),
      `lags ${lags.join(', ')} ms`,
    ).toEqual([]);
    bot.releaseHung();
    bot.mode = { kind: 'echo' };
  }, 90_000);

  it('web chat on the web process: the worker computes the reply and the typing indicator crosses over', async () => {
    const prefix = `r${++prefixN}`;
    const [web] = await Promise.all([
      start('web', { REDIS_KEY_PREFIX: prefix }),
      start('worker', { REDIS_KEY_PREFIX: prefix }),
    ]);
    bot.mode = { kind: 'echo', delayMs: 200 };
    const tab = await ChatClient.ready(web!.url, { token: visitorToken({ sub: 'roles-visitor' }) });
    try {
      const ack = await tab.say('hello worker');
      await tab.next('typing', (f) => f.on === true);
      const reply = await tab.botSays('re: hello worker');
      expect(reply.message.replyTo).toBe(ack.id);
      await tab.next('typing', (f) => f.on === false, tab.frames.indexOf(reply));
    } finally {
      await tab.end();
    }
  }, 60_000);

  it('the worker answers health and metrics, and 404 to the API, webhooks, web chat and pages', async () => {
    const prefix = `r${++prefixN}`;
    const twilio = {
      REDIS_KEY_PREFIX: prefix,
      TWILIO_ACCOUNT_SID: ACCOUNT_SID,
      TWILIO_AUTH_TOKEN: AUTH_TOKEN,
      TWILIO_API_URL: 'http://127.0.0.1:9',
    };
    const [web, worker] = await Promise.all([start('web', twilio), start('worker', twilio)]);
    for (const path of ['/healthz', '/readyz', '/metrics']) {
      const res = await fetch(`${worker!.url}${path}`);
      expect(res.status, path).toBe(200);
      await res.body?.cancel();
    }
    const auth = { authorization: `Bearer ${API_KEY}` };
    const probes: Array<[string, RequestInit]> = [
      ['/v1/conversations', { headers: auth }],
      ['/v1/openapi.json', {}],
      [
        '/v1/messages',
        { method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: '{}' },
      ],
      ['/webhooks/twilio', { method: 'POST', body: 'From=%2B15550001&Body=hi' }],
      ['/console', {}],
      ['/widget.js', {}],
      ['/', {}],
    ];
    for (const [path, init] of probes) {
      const onWorker = await fetch(`${worker!.url}${path}`, init);
      expect(onWorker.status, `worker ${path}`).toBe(404);
      expect(onWorker.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      await onWorker.body?.cancel();
      const onWeb = await fetch(`${web!.url}${path}`, init);
      expect(onWeb.status, `web ${path}`).not.toBe(404);
      await onWeb.body?.cancel();
    }
    // No WebSocket listener on the worker: the upgrade is refused, where the web process takes it.
    const refused = new ChatClient(worker!.url, { token: visitorToken({ sub: 'roles-visitor-2' }) });
    await refused.closed;
    expect(refused.refusedStatus).toBe(404);
    const taken = await ChatClient.ready(web!.url, { token: visitorToken({ sub: 'roles-visitor-2' }) });
    await taken.end();
  }, 60_000);

  it('1,000 messages over 100 conversations, each sent twice through the web process: the worker answers once each, in seq order', async () => {
    const prefix = `r${++prefixN}`;
    const [web] = await Promise.all([
      start('web', { REDIS_KEY_PREFIX: prefix }),
      start('worker', { REDIS_KEY_PREFIX: prefix, WORKER_CONCURRENCY: '16' }),
    ]);
    bot.calls.length = 0;
    bot.mode = { kind: 'echo', delayMs: () => Math.floor(Math.random() * 5) };
    const conversations = await Promise.all(Array.from({ length: 100 }, () => session(web!.url)));
    const sends: Array<() => Promise<{ status: number; id: string }>> = [];
    conversations.forEach((conversationId, c) => {
      for (let m = 0; m < 10; m++) {
        for (let copy = 0; copy < 2; copy++) {
          sends.push(async () => {
            const res = await web!.api('/v1/messages', {
              method: 'POST',
              json: { conversationId, text: `c${c}-m${m}`, clientMessageId: `c${c}-m${m}`, wait: 0 },
            });
            const body = (await res.json()) as { message: { id: string } };
            return { status: res.status, id: body.message.id };
          });
        }
      }
    });
    sends.sort(() => Math.random() - 0.5);
    const results = await pool(sends, 50);
    expect(results.filter((r) => r.status !== 202)).toEqual([]);
    expect(new Set(results.map((r) => r.id)).size).toBe(1000);

    await expectOnceInOrder(bot.calls, { messages: 1000, conversations: 100 });
    await expectOneReplyEach(web!.url, conversations, 10);
  }, 180_000);

  it('the worker killed with SIGKILL mid-message: another worker finishes, one reply per message, in order', async () => {
    const prefix = `r${++prefixN}`;
    const lease = { REDIS_KEY_PREFIX: prefix, LEASE_MS: '1500' };
    const [web, victim] = await Promise.all([start('web', lease), start('worker', lease)]);
    bot.calls.length = 0;
    bot.mode = { kind: 'hang' };
    const conversations = await Promise.all(Array.from({ length: 5 }, () => session(web!.url)));
    for (const conversationId of conversations) {
      for (let m = 0; m < 2; m++) {
        const res = await web!.api('/v1/messages', {
          method: 'POST',
          json: { conversationId, text: `k${m}`, wait: 0 },
        });
        expect(res.status).toBe(202);
        await res.body?.cancel();
      }
    }
    // The worker holds the first message of every conversation at the bot.
    await eventually(() => bot.calls.length === 5);
    expect(await victim!.kill('SIGKILL')).toBe(null);
    bot.releaseHung();
    bot.mode = { kind: 'echo' };
    // Without a worker nothing moves, however long the lease has been gone.
    await sleep(2_000);
    expect(bot.calls).toHaveLength(5);

    await start('worker', lease);
    await eventually(() => new Set(bot.calls.map((c) => c.messageId)).size === 10, 30_000, 100);
    await eventually(
      async () => {
        for (const conversationId of conversations) {
          const msgs = await allMessages(web!.url, conversationId);
          if (msgs.filter((m) => m.type === 'bot').length !== 2) return false;
        }
        return true;
      },
      20_000,
      200,
    );
    for (const conversationId of conversations) {
      const msgs = await allMessages(web!.url, conversationId);
      const users = msgs.filter((m) => m.type === 'user');
      expect(users.map((u) => u.processing?.state)).toEqual(['done', 'done']);
      expect(users[0]!.processing?.attempts).toBeGreaterThanOrEqual(2);
      for (const u of users) {
        const replies = msgs.filter((m) => m.replyTo === u.id);
        expect(replies.map((r) => r.delivery?.status)).toEqual(['sent']);
      }
      expect(users.map((u) => u.text)).toEqual(['k0', 'k1']);
      expect(msgs.filter((m) => m.type === 'bot').map((m) => m.text)).toEqual(['re: k0', 're: k1']);
    }
  }, 90_000);

  it('the handoff idle release is a worker job: due on the web process, done once a worker runs', async () => {
    const prefix = `r${++prefixN}`;
    const settings = { REDIS_KEY_PREFIX: prefix, HANDOFF_IDLE_RELEASE_S: '1' };
    const web = await start('web', settings);
    const id = await session(web.url);
    const entered = await web.api(`/v1/conversations/${id}/handoff`, { method: 'POST', json: {} });
    expect(entered.status).toBe(200);
    const state = async () =>
      ((await (await web.api(`/v1/conversations/${id}`)).json()) as { status: string }).status;
    const inHandoff = await state();
    expect(inHandoff).not.toBe('open');
    await sleep(3_000);
    expect(await state()).toBe(inHandoff);
    await start('worker', settings);
    await eventually(async () => (await state()) === 'open', 15_000, 200);
  }, 60_000);

  it('refuses ROLE=web and ROLE=worker on the embedded backend, with exit code 78 and a line saying why', async () => {
    for (const role of ['web', 'worker']) {
      const proc = spawn(process.execPath, ['--import', 'tsx', MAIN], {
        env: { ...process.env, ROLE: role, REDIS_URL: '', API_KEYS: API_KEY, PORT: '0', HOST: '127.0.0.1' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stderr = '';
      proc.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
      });
      const code = await new Promise<number | null>((resolve) => proc.once('exit', resolve));
      expect(code).toBe(78);
      expect(stderr).toContain(`ROLE = "${role}"`);
      expect(stderr).toContain('needs REDIS_URL');
    }
  }, 60_000);
});
