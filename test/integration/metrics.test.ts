/**
 * `/metrics` after real traffic (SPEC §12): signed and forged Twilio webhooks, a duplicate, an HTTP
 * bot that answers, then fails and opens its breaker, outbound webhooks delivered and failed, API calls
 * and a rate-limited key. Every stage's metric must have moved from its value before the traffic, and
 * no label may carry an id (conversation, message, provider SID).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BOT_SECRET, FakeBot } from '../fakes/bot.js';
import { ACCOUNT_SID, AUTH_TOKEN, FakeTwilioApi, postWebhook, smsParams } from '../fakes/twilio-api.js';
import { eventually } from '../helpers/eventually.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { WebhookReceiver } from '../helpers/webhook-receiver.js';

const PUBLIC_URL = 'https://chat.example.com';

let bot: FakeBot;
let twilioApi: FakeTwilioApi;
let receiver: WebhookReceiver;
let gw: TestGateway;

beforeAll(async () => {
  [bot, twilioApi, receiver] = await Promise.all([
    FakeBot.start(),
    FakeTwilioApi.start(),
    WebhookReceiver.start(),
  ]);
  gw = await startGateway(
    {
      PUBLIC_URL,
      BOT_URL: bot.url,
      BOT_SECRET,
      BOT_MAX_ATTEMPTS: '1',
      BOT_BREAKER_THRESHOLD: '1',
      WEBHOOKS_ALLOW_PRIVATE: 'true',
      TWILIO_ACCOUNT_SID: ACCOUNT_SID,
      TWILIO_AUTH_TOKEN: AUTH_TOKEN,
      TWILIO_API_URL: twilioApi.url,
    },
    // Retries at once, so a failed delivery's retry is seen within the test.
    { webhooks: { retryCeilingsMs: [10, 10, 10], pollIntervalMs: 20 } },
  );
});

afterAll(async () => {
  await gw?.stop();
  await Promise.all([bot?.close(), twilioApi?.close(), receiver?.close()]);
});

type Samples = Map<string, number>;

async function scrape(): Promise<{ text: string; samples: Samples }> {
  const text = await (await fetch(`${gw.url}/metrics`)).text();
  const samples: Samples = new Map();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    samples.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return { text, samples };
}

const post = (params: Record<string, string>, token?: string) =>
  postWebhook(`${gw.url}/webhooks/twilio`, params, {
    signedUrl: `${PUBLIC_URL}/webhooks/twilio`,
    ...(token ? { token } : {}),
  });

describe('/metrics after real traffic', () => {
  it('moves every stage, with no id in any label', async () => {
    const before = (await scrape()).samples;

    // Outbound webhooks: the first attempt fails, its retry is delivered.
    const hook = await gw.api('/v1/webhooks', {
      method: 'POST',
      json: { url: `${receiver.url}/hook`, events: ['message.created'] },
    });
    expect(hook.status).toBe(201);
    receiver.secrets = [((await hook.json()) as { secret: string }).secret];
    receiver.plan.push({ kind: 'status', status: 500 });

    // A message the bot answers, sent twice (the second is a duplicate).
    const first = smsParams({ From: '+14155550111', Body: 'hello metrics' });
    expect((await post(first)).status).toBe(200);
    expect((await post(first)).status).toBe(200);
    await eventually(() => twilioApi.created().find((r) => r.fields.Body === 're: hello metrics'));
    // A forged one, refused.
    expect(
      (await post(smsParams({ From: '+14155550112', Body: 'forged' }), 'not-the-token-0123456789')).status,
    ).toBe(403);
    // The bot fails once: the breaker (threshold 1) opens, and the next message does not reach it.
    bot.script.push({ kind: 'status', status: 500 });
    expect((await post(smsParams({ From: '+14155550113', Body: 'fail' }))).status).toBe(200);
    await eventually(() => twilioApi.created().filter((r) => r.fields.To === '+14155550113').length === 1);
    expect((await post(smsParams({ From: '+14155550114', Body: 'skipped' }))).status).toBe(200);
    await eventually(() => twilioApi.created().filter((r) => r.fields.To === '+14155550114').length === 1);

    // A key limited to one request a minute, used twice.
    const key = await gw.api('/v1/keys', {
      method: 'POST',
      json: { name: 'metrics', scopes: ['conversations:read'], rateLimitPerMin: 1 },
    });
    expect(key.status).toBe(201);
    const limited = ((await key.json()) as { key: string }).key;
    const asKey = () =>
      fetch(`${gw.url}/v1/conversations`, { headers: { authorization: `Bearer ${limited}` } });
    expect((await asKey()).status).toBe(200);
    expect((await asKey()).status).toBe(429);

    await eventually(() => receiver.accepted.some((d) => d.answered === 'ok'));

    const { text, samples: after } = await scrape();
    const moved = (name: string) => (after.get(name) ?? 0) - (before.get(name) ?? 0);
    const expectations: Array<[string, (delta: number) => boolean]> = [
      ['switchboard_webhook_requests_total{channel="twilio",status="2xx"}', (d) => d >= 4],
      ['switchboard_webhook_requests_total{channel="twilio",status="4xx"}', (d) => d === 1],
      ['switchboard_requests_rejected_total{channel="twilio",reason="bad_signature"}', (d) => d === 1],
      [
        'switchboard_verification_failures_total{channel="twilio",reason="bad_signature",mode="enforce"}',
        (d) => d === 1,
      ],
      ['switchboard_http_request_duration_seconds_count{surface="webhook"}', (d) => d >= 5],
      ['switchboard_messages_accepted_total{channel="sms"}', (d) => d === 3],
      ['switchboard_messages_duplicate_total{channel="sms"}', (d) => d === 1],
      ['switchboard_queue_wait_seconds_count{channel="sms"}', (d) => d === 3],
      ['switchboard_bot_requests_total{outcome="ok"}', (d) => d === 1],
      ['switchboard_bot_requests_total{outcome="error"}', (d) => d === 1],
      ['switchboard_bot_requests_total{outcome="breaker_open"}', (d) => d === 1],
      ['switchboard_bot_duration_seconds_count', (d) => d === 1],
      ['switchboard_bot_breaker_open', () => after.get('switchboard_bot_breaker_open') === 1],
      ['switchboard_messages_processed_total{outcome="done"}', (d) => d >= 1],
      ['switchboard_messages_sent_total{channel="sms",outcome="sent"}', (d) => d === 3],
      ['switchboard_send_duration_seconds_count{channel="sms"}', (d) => d === 3],
      ['switchboard_webhook_delivery_attempts_total{outcome="failed"}', (d) => d >= 1],
      ['switchboard_webhook_delivery_attempts_total{outcome="delivered"}', (d) => d >= 1],
      ['switchboard_webhook_delivery_duration_seconds_count', (d) => d >= 2],
      ['switchboard_api_requests_total{method="POST",status="2xx"}', (d) => d >= 2],
      ['switchboard_api_requests_total{method="GET",status="4xx"}', (d) => d === 1],
      ['switchboard_http_request_duration_seconds_count{surface="api"}', (d) => d >= 4],
      ['switchboard_rate_limited_total', (d) => d === 1],
    ];
    const wrong = expectations
      .filter(([name, ok]) => !ok(moved(name)))
      .map(([name]) => `${name}: ${before.get(name) ?? 0} -> ${after.get(name) ?? 'absent'}`);
    expect(wrong).toEqual([]);
    expect(after.has('switchboard_queue_pending')).toBe(true);

    // Low cardinality: no conversation, message or event id and no provider SID in any label.
    const labels = text
      .split('\n')
      .filter((l) => l.startsWith('switchboard_'))
      .join('\n');
    expect(labels).not.toMatch(/conv_|msg_|evt_|key_|SM[0-9a-f]{32}|\+1415/);
  });
});

describe('webhook paths', () => {
  it('are counted once each, whatever their case, and an unknown one ends in a 404', async () => {
    const before = (await scrape()).samples;
    const unknown = await fetch(`${gw.url}/webhooks/nobody`, { method: 'POST', body: 'x' });
    expect(unknown.status).toBe(404);
    expect(unknown.headers.get('content-type')).toContain('application/problem+json');
    // Express routes case-insensitively: this reaches the Twilio adapter, which refuses the signature.
    const shouting = await fetch(`${gw.url}/WEBHOOKS/twilio`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'MessageSid=SM1',
    });
    expect(shouting.status).toBe(403);
    const after = (await scrape()).samples;
    const moved = (name: string) => (after.get(name) ?? 0) - (before.get(name) ?? 0);
    // Neither path names a channel as the label does (lower case), so both count under `other`.
    expect(moved('switchboard_webhook_requests_total{channel="other",status="4xx"}')).toBe(2);
    expect(moved('switchboard_http_request_duration_seconds_count{surface="webhook"}')).toBe(2);
  });
});
