/**
 * SPEC §12 tracing, end to end on real Redis with a real OTLP/HTTP receiver: a Twilio message accepted
 * by one process (`ROLE=web`) and answered by another (a separate OS process, `ROLE=worker`, HTTP bot,
 * sent as SMS) is one connected trace; the bot and the outbound webhook get the trace's `traceparent`;
 * the status callback's span links to the send. With OTEL_EXPORTER_OTLP_ENDPOINT unset, nothing is
 * exported and the message still goes through.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Message } from '../../src/core/model.js';
import { BOT_SECRET, FakeBot } from '../fakes/bot.js';
import {
  ACCOUNT_SID,
  AUTH_TOKEN,
  FakeTwilioApi,
  newSid,
  postWebhook,
  smsParams,
  statusParams,
} from '../fakes/twilio-api.js';
import { eventually } from '../helpers/eventually.js';
import { type SpawnedGateway, spawnGateway, startGateway, type TestGateway } from '../helpers/gateway.js';
import { OtlpReceiver, type ReceivedSpan } from '../helpers/otlp-receiver.js';
import { RedisServer, redisAvailable } from '../helpers/redis.js';
import { WebhookReceiver } from '../helpers/webhook-receiver.js';

const enabled = redisAvailable();
const PUBLIC_URL = 'https://chat.example.com';
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/;

describe.skipIf(!enabled)('tracing (SPEC §12)', () => {
  let redis: RedisServer;
  let bot: FakeBot;
  let twilioApi: FakeTwilioApi;
  let receiver: OtlpReceiver;
  let crm: WebhookReceiver;
  let answering: SpawnedGateway | undefined;
  let accepting: TestGateway | undefined;

  const env = (extra: Record<string, string> = {}) => ({
    REDIS_URL: redis.url,
    PUBLIC_URL,
    TWILIO_ACCOUNT_SID: ACCOUNT_SID,
    TWILIO_AUTH_TOKEN: AUTH_TOKEN,
    TWILIO_API_URL: twilioApi.url,
    BOT_URL: bot.url,
    BOT_SECRET,
    WEBHOOKS_ALLOW_PRIVATE: 'true',
    ...extra,
  });
  const post = (base: string, path: string, params: Record<string, string>) =>
    postWebhook(`${base}${path}`, params, { signedUrl: `${PUBLIC_URL}${path}` });

  beforeAll(async () => {
    redis = await RedisServer.start();
    bot = await FakeBot.start();
    twilioApi = await FakeTwilioApi.start();
    receiver = await OtlpReceiver.start();
    crm = await WebhookReceiver.start();
  });

  afterAll(async () => {
    await answering?.kill('SIGKILL');
    await accepting?.stop();
    await Promise.all([bot?.close(), twilioApi?.close(), receiver?.close()]);
    await crm?.close();
    await redis?.dispose();
  });

  it('one connected trace across two processes: webhook, verify, accept, queue wait, process, bot call, send; the status callback links to the send', async () => {
    const otel = { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_BSP_SCHEDULE_DELAY: '100' };
    // The answering process: its own OS process, the engine and outbound webhooks (ROLE=worker).
    answering = await spawnGateway(
      env({
        ...otel,
        ROLE: 'worker',
        OTEL_SERVICE_NAME: 'sb-answering',
        // Standard settings the SDK reads itself (docs/production.md#tracing).
        OTEL_RESOURCE_ATTRIBUTES: 'deployment.environment.name=test,team=chat',
        OTEL_EXPORTER_OTLP_HEADERS: 'x-collector-key=k-123',
      }),
    );
    expect(answering.output.join('')).toContain(`tracing on: spans go to ${receiver.url}/v1/traces`);
    // The accepting process: webhooks and the API, no engine (ROLE=web), so the message can only be
    // answered, and its outbound webhook only sent, by the other one.
    accepting = await startGateway(env({ ...otel, ROLE: 'web', OTEL_SERVICE_NAME: 'sb-accepting' }));

    // An outbound webhook subscriber: deliveries of a traced message carry its traceparent.
    const hook = await accepting.api('/v1/webhooks', {
      method: 'POST',
      json: { url: `${crm.url}/hook`, events: ['message.created'] },
    });
    expect(hook.status).toBe(201);
    crm.secrets = [((await hook.json()) as { secret: string }).secret];

    const sid = newSid();
    const res = await post(
      accepting.url,
      '/webhooks/twilio',
      smsParams({ MessageSid: sid, Body: 'trace me' }),
    );
    expect(res.status).toBe(200);
    const call = await eventually(() => bot.calls.find((c) => c.text === 'trace me'));
    const created = await eventually(() => twilioApi.created().find((r) => r.fields.Body === 're: trace me'));

    // The stored message carries the accept's trace context, and the API shows it.
    const messages = (await (
      await accepting.api(`/v1/conversations/${call.conversationId}/messages`)
    ).json()) as { items: Message[] };
    const inbound = messages.items.find((m) => m.id === call.messageId);
    expect(inbound?.traceparent).toMatch(TRACEPARENT);
    const traceId = TRACEPARENT.exec(inbound!.traceparent!)![1]!;

    // The bot got the trace's traceparent, from the answering process's bot.call span.
    expect(call.traceparent).toMatch(TRACEPARENT);
    expect(TRACEPARENT.exec(call.traceparent!)![1]).toBe(traceId);

    const delivered = await eventually(() =>
      crm.received.find(
        (d) => d.event.type === 'message.created' && d.raw.includes(`"id":"${call.messageId}"`),
      ),
    );
    expect(delivered.verifiedWith).toEqual([0]);
    expect(delivered.traceparent).toBe(inbound!.traceparent);

    // Twilio's status callback for the reply, to the accepting process.
    const statusRes = await post(
      accepting.url,
      '/webhooks/twilio/status',
      statusParams(created.sid!, 'delivered'),
    );
    expect(statusRes.status).toBe(204);
    await eventually(async () => {
      const list = (await (
        await accepting!.api(`/v1/conversations/${call.conversationId}/messages`)
      ).json()) as { items: Message[] };
      const reply = list.items.find((m) => m.replyTo === call.messageId);
      return reply?.delivery?.status === 'delivered' ? reply : undefined;
    });
    // Twilio retrying the webhook: accepted again as a duplicate, which its accept span says.
    const again = await post(
      accepting.url,
      '/webhooks/twilio',
      smsParams({ MessageSid: sid, Body: 'trace me' }),
    );
    expect(again.status).toBe(200);
    // Stopping flushes the accepting process's spans; the other exports every 100 ms.
    await accepting.stop();
    accepting = undefined;

    const inTrace = (name: string, service: string): ReceivedSpan =>
      receiver.spans.find((s) => s.name === name && s.service === service && s.traceId === traceId)!;
    const spans = await eventually(() => {
      const found = {
        webhook: inTrace('webhook twilio', 'sb-accepting'),
        verify: inTrace('verify', 'sb-accepting'),
        accept: inTrace('accept', 'sb-accepting'),
        queueWait: inTrace('queue.wait', 'sb-answering'),
        process: inTrace('process', 'sb-answering'),
        botCall: inTrace('bot.call', 'sb-answering'),
        send: inTrace('send sms', 'sb-answering'),
      };
      return Object.values(found).every(Boolean) ? found : undefined;
    });

    // OTEL_RESOURCE_ATTRIBUTES and OTEL_EXPORTER_OTLP_HEADERS are honoured (the answering process).
    expect(spans.process.resource).toMatchObject({
      'service.name': 'sb-answering',
      'deployment.environment.name': 'test',
      team: 'chat',
    });
    expect(spans.accept.resource['deployment.environment.name']).toBeUndefined();
    const withKey = receiver.requests.filter((r) => r.headers['x-collector-key'] === 'k-123');
    expect(withKey.length).toBeGreaterThan(0);
    expect(withKey.length).toBeLessThan(receiver.requests.length);

    // One tree: webhook > verify, accept > queue.wait, process > bot.call, send.
    expect(spans.webhook.parentSpanId).toBeUndefined();
    expect(spans.webhook.kind).toBe(2); // SERVER
    expect(spans.webhook.attributes['http.request.method']).toBe('POST');
    expect(spans.webhook.attributes['http.response.status_code']).toBe(200);
    expect(spans.verify.parentSpanId).toBe(spans.webhook.spanId);
    expect(spans.verify.attributes['switchboard.verify.outcome']).toBe('ok');
    expect(spans.accept.parentSpanId).toBe(spans.webhook.spanId);
    expect(spans.accept.attributes['switchboard.dedupe']).toBe('new');
    expect(spans.accept.attributes['switchboard.message.id']).toBe(call.messageId);
    expect(inbound!.traceparent).toBe(`00-${traceId}-${spans.accept.spanId}-01`);
    expect(spans.queueWait.parentSpanId).toBe(spans.accept.spanId);
    expect(spans.process.parentSpanId).toBe(spans.accept.spanId);
    // The queue wait starts at the accept (the message's createdAt) and ends at the claim.
    expect(spans.queueWait.startNs).toBeLessThanOrEqual(spans.accept.endNs);
    expect(spans.queueWait.endNs).toBeLessThanOrEqual(spans.process.startNs + 5_000_000n);
    expect(spans.botCall.parentSpanId).toBe(spans.process.spanId);
    expect(spans.botCall.kind).toBe(3); // CLIENT
    expect(call.traceparent).toBe(`00-${traceId}-${spans.botCall.spanId}-01`);
    expect(spans.send.parentSpanId).toBe(spans.process.spanId);
    expect(spans.send.attributes['switchboard.external_id']).toBe(created.sid);
    expect(spans.send.attributes['messaging.system']).toBe('sms');

    // The status callback: its own trace (Twilio sends no context), linked to the send span.
    const status = receiver.spans.find(
      (s) => s.name === 'webhook twilio' && s.links.some((l) => l.spanId === spans.send.spanId),
    );
    expect(status).toBeDefined();
    expect(status!.attributes['url.path']).toBe('/webhooks/twilio/status');
    expect(status!.links[0]).toMatchObject({
      traceId,
      spanId: spans.send.spanId,
      attributes: { 'switchboard.delivery.status': 'delivered' },
    });

    const duplicate = receiver.spans.find(
      (s) => s.name === 'accept' && s.attributes['switchboard.dedupe'] === 'duplicate',
    );
    expect(duplicate?.attributes['switchboard.message.id']).toBe(call.messageId);
    expect(duplicate?.traceId).not.toBe(traceId);
    expect(bot.calls.filter((c) => c.text === 'trace me')).toHaveLength(1);

    // Exports are OTLP/HTTP with JSON bodies, to the spec's traces path.
    expect(receiver.requests.every((r) => r.path === '/v1/traces')).toBe(true);
    expect(receiver.requests.every((r) => r.contentType.startsWith('application/json'))).toBe(true);
    await answering.kill('SIGTERM');
    answering = undefined;
  });

  it('with OTEL_EXPORTER_OTLP_ENDPOINT unset: no export, no traceparent anywhere, the message answered', async () => {
    const before = receiver.requests.length;
    const gw = await startGateway(env({ REDIS_KEY_PREFIX: 'untraced' }));
    try {
      expect(gw.logs.lines.some((l) => /tracing on/.test(String(l.msg)))).toBe(false);
      const res = await post(gw.url, '/webhooks/twilio', smsParams({ Body: 'not traced' }));
      expect(res.status).toBe(200);
      const call = await eventually(() => bot.calls.find((c) => c.text === 'not traced'));
      await eventually(() => twilioApi.created().find((r) => r.fields.Body === 're: not traced'));
      expect(call.traceparent).toBeUndefined();
      const list = (await (await gw.api(`/v1/conversations/${call.conversationId}/messages`)).json()) as {
        items: Message[];
      };
      expect(list.items.length).toBe(2);
      for (const m of list.items) expect(m.traceparent).toBeUndefined();
    } finally {
      await gw.stop();
    }
    await new Promise((r) => setTimeout(r, 300));
    expect(receiver.requests.length).toBe(before);
  });
});
