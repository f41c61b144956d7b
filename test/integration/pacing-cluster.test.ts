/**
 * Pacing across processes (docs/pacing.md): two gateway processes on one Redis keep one provider's
 * and one endpoint's limits together. Both post replies into one Slack channel, and the fake Slack
 * sees them at least a second apart; both deliver webhooks to one slow endpoint, and it never has more
 * than WEBHOOKS_ENDPOINT_CONCURRENCY requests in flight; an endpoint found dead opens the breaker for
 * both, so during the cooldown neither sends to it and after it only one trial comes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventEnvelope, FakeSlackApi, nextTs, SIGNING_SECRET, signSlack } from '../fakes/slack-api.js';
import { eventually } from '../helpers/eventually.js';
import { type SpawnedGateway, spawnGateway } from '../helpers/gateway.js';
import { RedisServer, redisAvailable } from '../helpers/redis.js';
import { WebhookReceiver } from '../helpers/webhook-receiver.js';

const enabled = redisAvailable();

const CONCURRENCY = 2;
const THRESHOLD = 3;
const COOLDOWN_MS = 3_000;

describe.skipIf(!enabled)('pacing shared by two processes (Redis)', () => {
  let redis: RedisServer;
  let slack: FakeSlackApi;
  let slow: WebhookReceiver;
  let dead: WebhookReceiver;
  let procs: SpawnedGateway[] = [];

  beforeAll(async () => {
    [redis, slack, slow, dead] = await Promise.all([
      RedisServer.start({ fsync: 'everysec' }),
      FakeSlackApi.start(),
      WebhookReceiver.start(),
      WebhookReceiver.start(),
    ]);
    const env = {
      REDIS_URL: redis.url,
      REDIS_KEY_PREFIX: 'pacing',
      SLACK_SIGNING_SECRET: SIGNING_SECRET,
      SLACK_BOT_TOKEN: 'xoxb-test-0000-token',
      SLACK_API_URL: slack.url,
      WEBHOOKS_ALLOW_PRIVATE: 'true',
      WEBHOOKS_ENDPOINT_CONCURRENCY: String(CONCURRENCY),
      WEBHOOKS_BREAKER_THRESHOLD: String(THRESHOLD),
      WEBHOOKS_BREAKER_COOLDOWN_MS: String(COOLDOWN_MS),
    };
    procs = await Promise.all([spawnGateway(env), spawnGateway(env)]);
  }, 60_000);

  afterAll(async () => {
    await Promise.all(procs.map((p) => p.kill('SIGKILL')));
    await Promise.all([slack?.close(), slow?.close(), dead?.close()]);
    await redis?.dispose();
  });

  it('posts into one Slack channel from both processes at most once a second', async () => {
    const [a, b] = procs as [SpawnedGateway, SpawnedGateway];
    const THREADS = 6;
    // Each mention starts a thread of its own (a conversation each), all in channel C7001.
    const sent = await Promise.all(
      Array.from({ length: THREADS }, async (_, i) => {
        const ts = nextTs();
        const event = {
          type: 'app_mention',
          channel: 'C7001',
          channel_type: 'channel',
          user: 'U0001',
          text: `<@U0BOT> question ${i}`,
          ts,
          event_ts: ts,
        };
        const body = JSON.stringify(eventEnvelope(event));
        const res = await fetch(`${(i % 2 ? a : b).url}/webhooks/slack/events`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...signSlack(body) },
          body,
        });
        return res.status;
      }),
    );
    expect(sent).toEqual(Array(THREADS).fill(200));
    const posts = await eventually(() => {
      const p = slack.posts.filter((x) => x.channel === 'C7001');
      return p.length === THREADS && p;
    }, 30_000);
    const at = posts.map((p) => p.at).sort((x, y) => x - y);
    const gaps = at.slice(1).map((t, i) => Math.round(t - at[i]!));
    // Slots are a second apart on Redis's clock; the fake sees arrivals, which a loaded machine can
    // bring closer by a request's latency. Two processes pacing each on its own would post in pairs.
    for (const gap of gaps) expect(gap, `gaps ${gaps.join(', ')} ms`).toBeGreaterThanOrEqual(850);
  }, 60_000);

  it('keeps one slow endpoint at WEBHOOKS_ENDPOINT_CONCURRENCY in flight over both processes, and stops both at a dead one', async () => {
    const [a, b] = procs as [SpawnedGateway, SpawnedGateway];
    slow.mode = { kind: 'slow', delayMs: 300 };
    dead.mode = { kind: 'status', status: 500 };
    for (const r of [slow, dead]) {
      const res = await a.api('/v1/webhooks', {
        method: 'POST',
        json: { url: `${r.url}/crm`, events: ['message.created'] },
      });
      expect(res.status).toBe(201);
      r.secrets = [((await res.json()) as { secret: string }).secret];
    }
    // Let both processes' endpoint caches see the subscriptions.
    await new Promise((r) => setTimeout(r, 1_500));

    const CONVERSATIONS = 10;
    await Promise.all(
      Array.from({ length: CONVERSATIONS }, async (_, i) => {
        const gw = i % 2 ? a : b;
        const session = await gw.api('/v1/sessions', { method: 'POST', json: {} });
        expect(session.status).toBe(201);
        const { conversationId } = (await session.json()) as { conversationId: string };
        const res = await gw.api('/v1/messages', {
          method: 'POST',
          json: { conversationId, text: `hello ${i}`, clientMessageId: `m${i}` },
        });
        expect(res.status).toBeLessThan(300);
      }),
    );

    // Every customer message and every reply reaches the slow endpoint, never more than 2 at once.
    await slow.waitFor((r) => new Set(r.map((d) => d.webhookId)).size >= 2 * CONVERSATIONS, 60_000);
    expect(slow.unverified).toEqual([]);
    expect(slow.maxInFlight).toBe(CONCURRENCY);

    // The dead endpoint: a first burst until THRESHOLD failures (plus what was already in flight), then
    // nothing from either process for the cooldown, then one trial per cooldown.
    await dead.waitFor((r) => r.length >= 1);
    const first = dead.received[0]!.at;
    await new Promise((r) => setTimeout(r, 2 * COOLDOWN_MS + 1_500 - (Date.now() - first)));
    const at = dead.received.map((d) => d.at).sort((x, y) => x - y);
    const burst = at.filter((t) => t < first + COOLDOWN_MS / 2);
    const after = at.filter((t) => t >= first + COOLDOWN_MS / 2);
    const described = `attempts at +${at.map((t) => t - first).join(', +')} ms`;
    expect(burst.length, described).toBeGreaterThanOrEqual(THRESHOLD);
    expect(burst.length, described).toBeLessThanOrEqual(THRESHOLD + CONCURRENCY - 1);
    expect(after.length, described).toBeGreaterThanOrEqual(1);
    expect(after[0]! - burst.at(-1)!, described).toBeGreaterThanOrEqual(COOLDOWN_MS - 300);
    // One trial at a time over both processes, each a cooldown after the last.
    for (let i = 1; i < after.length; i++) {
      expect(after[i]! - after[i - 1]!, described).toBeGreaterThanOrEqual(COOLDOWN_MS - 300);
    }
    // Each process's gauge shows the dead endpoint's breaker open (the slow one's closed).
    for (const gw of [a, b]) {
      await eventually(async () =>
        /^switchboard_webhook_breakers_open 1$/m.test(await (await fetch(`${gw.url}/metrics`)).text()),
      );
    }
  }, 90_000);
});
