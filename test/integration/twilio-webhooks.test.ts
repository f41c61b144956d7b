/**
 * The Twilio channel end to end on the embedded backend: signed webhooks in (signatures made at run time
 * with twilio-node), the demo bot's replies out through the real twilio client to the recording fake,
 * status callbacks back. The gateway listens on plain http while PUBLIC_URL is https, as behind a TLS
 * proxy, so every accepted request here is the proxy case.
 */
import twilio from 'twilio';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EMPTY_TWIML } from '../../adapters/twilio/index.js';
import type { Conversation, Message } from '../../src/core/model.js';
import {
  ACCOUNT_SID,
  AUTH_TOKEN,
  FakeTwilioApi,
  newSid,
  type PostOptions,
  postWebhook,
  smsParams,
  statusParams,
  type WebhookParams,
  whatsappParams,
} from '../fakes/twilio-api.js';
import { eventually } from '../helpers/eventually.js';
import { spawnGateway, startGateway, type TestGateway } from '../helpers/gateway.js';

const PUBLIC_URL = 'https://chat.example.com';
const STATUS_CALLBACK = `${PUBLIC_URL}/webhooks/twilio/status`;

let fake: FakeTwilioApi;
let gw: TestGateway;

/** Posts to the gateway, signed for PUBLIC_URL + path as Twilio would be configured. */
function post(path: string, params: WebhookParams, opts: PostOptions = {}) {
  return postWebhook(`${gw.url}${path}`, params, { signedUrl: `${PUBLIC_URL}${path}`, ...opts });
}

async function conversationByRef(channel: string, channelRef: string): Promise<Conversation | undefined> {
  const res = await gw.api(`/v1/conversations?channel=${channel}&take=200`);
  const { items } = (await res.json()) as { items: Conversation[] };
  return items.find((c) => c.channelRef === channelRef);
}

async function messagesOf(conversationId: string): Promise<Message[]> {
  const res = await gw.api(`/v1/conversations/${conversationId}/messages?take=200`);
  return ((await res.json()) as { items: Message[] }).items;
}

async function message(conversationId: string, id: string): Promise<Message> {
  return (await (await gw.api(`/v1/conversations/${conversationId}/messages/${id}`)).json()) as Message;
}

/** Waits for the bot reply to reach the fake with this Body and returns the recorded request. */
function replyTo(text: string) {
  return eventually(() => fake.created().find((r) => r.fields.Body === `You said: ${text}`));
}

function refusals(reason: string) {
  return gw.logs.lines.filter((l) => l.msg === 'Twilio webhook refused' && l.reason === reason);
}

beforeAll(async () => {
  fake = await FakeTwilioApi.start();
  gw = await startGateway({
    PUBLIC_URL,
    TWILIO_ACCOUNT_SID: ACCOUNT_SID,
    TWILIO_AUTH_TOKEN: AUTH_TOKEN,
    TWILIO_API_URL: fake.url,
  });
});

afterAll(async () => {
  await gw?.stop();
  await fake?.close();
});

describe('Twilio round trips', () => {
  it('SMS: answers empty TwiML, stores the message, replies from our number with a status callback', async () => {
    const params = smsParams({ From: '+14155550101', Body: 'Hello + goodbye, Çava? 👋' });
    const res = await post('/webhooks/twilio', params);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/xml; charset=utf-8');
    expect(res.headers.get('content-length')).toBe(String(EMPTY_TWIML.length));
    expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    expect(await res.text()).toBe(EMPTY_TWIML);

    const reply = await replyTo('Hello + goodbye, Çava? 👋');
    expect(reply.user).toBe(ACCOUNT_SID);
    expect(reply.fields).toEqual({
      From: '+15005550006',
      To: '+14155550101',
      Body: 'You said: Hello + goodbye, Çava? 👋',
      StatusCallback: STATUS_CALLBACK,
    });

    const conv = await conversationByRef('sms', '+15005550006|+14155550101');
    expect(conv?.participants).toContainEqual({
      id: 'sms:+14155550101',
      role: 'user',
      address: '+14155550101',
      contactId: expect.stringMatching(/^ct_/),
    });
    const stored = await eventually(async () => {
      const all = await messagesOf(conv?.id ?? '');
      return all.length === 2 && all[1]?.externalId ? all : undefined;
    });
    expect(stored[0]).toMatchObject({
      direction: 'inbound',
      text: params.Body,
      externalId: params.MessageSid,
    });
    expect(stored[1]).toMatchObject({
      direction: 'outbound',
      externalId: reply.sid,
      delivery: { status: 'sent' },
    });
  });

  it('WhatsApp with media: attachment and profile name stored, reply from the whatsapp: number', async () => {
    const params = whatsappParams({
      From: 'whatsapp:+14155550102',
      Body: 'see photo',
      NumMedia: '1',
      MediaUrl0: `https://api.twilio.com/2010-04-01/Accounts/${ACCOUNT_SID}/Messages/MM1/Media/ME1`,
      MediaContentType0: 'image/jpeg',
      MessageType: 'image',
    });
    expect((await post('/webhooks/twilio', params)).status).toBe(200);
    const reply = await replyTo('see photo');
    expect(reply.fields).toMatchObject({ From: 'whatsapp:+14155238886', To: 'whatsapp:+14155550102' });

    const conv = await conversationByRef('whatsapp', '+14155238886|+14155550102');
    expect(conv?.channel).toBe('whatsapp');
    const [inbound] = await messagesOf(conv?.id ?? '');
    expect(inbound?.name).toBe('Jane Doe');
    expect(inbound?.attachments).toEqual([{ url: params.MediaUrl0, contentType: 'image/jpeg' }]);
  });

  it('a redelivered webhook is acknowledged again but stored and answered once', async () => {
    const params = smsParams({ From: '+14155550103', Body: 'only once' });
    const first = await post('/webhooks/twilio', params);
    const again = await post('/webhooks/twilio', params);
    expect([first.status, again.status]).toEqual([200, 200]);
    expect(await again.text()).toBe(EMPTY_TWIML);
    // A later message in the same conversation is answered after any reply to the repeat would be.
    expect((await post('/webhooks/twilio', smsParams({ From: '+14155550103', Body: 'next' }))).status).toBe(
      200,
    );
    await replyTo('next');
    expect(fake.created().filter((r) => r.fields.Body === 'You said: only once')).toHaveLength(1);
    const conv = await conversationByRef('sms', '+15005550006|+14155550103');
    expect((await messagesOf(conv?.id ?? '')).map((m) => m.text)).toEqual([
      'only once',
      'You said: only once',
      'next',
      'You said: next',
    ]);
  });

  it('a customer writing after their conversation was deleted starts a new one', async () => {
    const from = '+14155550104';
    expect((await post('/webhooks/twilio', smsParams({ From: from, Body: 'before' }))).status).toBe(200);
    await replyTo('before');
    const ref = `+15005550006|${from}`;
    const old = (await conversationByRef('sms', ref))!;
    expect((await gw.api(`/v1/conversations/${old.id}`, { method: 'DELETE' })).status).toBe(200);

    // This process has seen the number: the next message must not go to the deleted conversation.
    expect((await post('/webhooks/twilio', smsParams({ From: from, Body: 'after' }))).status).toBe(200);
    await replyTo('after');
    const fresh = (await conversationByRef('sms', ref))!;
    expect(fresh.id).not.toBe(old.id);
    expect((await messagesOf(fresh.id)).map((m) => m.text)).toEqual(['after', 'You said: after']);
    expect((await gw.api(`/v1/conversations/${old.id}`)).status).toBe(404);
  });

  it('accepts the bodySHA256 JSON variant', async () => {
    const body = JSON.stringify({
      MessageSid: newSid(),
      AccountSid: ACCOUNT_SID,
      From: '+14155550104',
      To: '+15005550006',
      Body: 'json hi',
    });
    const path = `/webhooks/twilio?bodySHA256=${twilio.getExpectedBodyHash(body)}`;
    const signature = twilio.getExpectedTwilioSignature(AUTH_TOKEN, `${PUBLIC_URL}${path}`, {});
    const res = await post(path, {}, { rawBody: body, signature, contentType: 'application/json' });
    expect(res.status).toBe(200);
    await replyTo('json hi');
  });
});

describe('status callbacks', () => {
  it('move the delivery status forward only, whatever order they come in', async () => {
    await post('/webhooks/twilio', smsParams({ From: '+14155550105', Body: 'track me' }));
    const reply = await replyTo('track me');
    const sid = reply.sid ?? '';
    const conv = await conversationByRef('sms', '+15005550006|+14155550105');
    const botMessage = await eventually(async () =>
      (await messagesOf(conv?.id ?? '')).find((m) => m.externalId === sid && m.delivery?.status === 'sent'),
    );
    const statusOf = async () => (await message(conv?.id ?? '', botMessage.id)).delivery?.status;

    for (const status of ['delivered', 'sent', 'queued', 'delivered']) {
      const res = await post('/webhooks/twilio/status', statusParams(sid, status, { To: '+14155550105' }));
      expect(res.status).toBe(204);
      expect(await statusOf()).toBe('delivered');
    }
    await post('/webhooks/twilio/status', statusParams(sid, 'read', { To: '+14155550105' }));
    expect(await statusOf()).toBe('read');
    await post('/webhooks/twilio/status', statusParams(sid, 'delivered', { To: '+14155550105' }));
    expect(await statusOf()).toBe('read');
  });

  it('a failed callback (63016 on WhatsApp) ends the message failed with the code and a reason', async () => {
    await post('/webhooks/twilio', whatsappParams({ From: 'whatsapp:+14155550106', Body: 'window' }));
    const reply = await replyTo('window');
    const conv = await conversationByRef('whatsapp', '+14155238886|+14155550106');
    const botMessage = await eventually(async () =>
      (await messagesOf(conv?.id ?? '')).find(
        (m) => m.externalId === reply.sid && m.delivery?.status === 'sent',
      ),
    );
    const res = await post(
      '/webhooks/twilio/status',
      statusParams(reply.sid ?? '', 'failed', {
        ErrorCode: '63016',
        From: 'whatsapp:+14155238886',
        To: 'whatsapp:+14155550106',
      }),
    );
    expect(res.status).toBe(204);
    const failed = await message(conv?.id ?? '', botMessage.id);
    expect(failed.delivery?.status).toBe('failed');
    expect(failed.delivery?.error?.code).toBe('63016');
    expect(failed.delivery?.error?.message).toMatch(/24-hour messaging window/);
    // A late "delivered" cannot revive it.
    await post(
      '/webhooks/twilio/status',
      statusParams(reply.sid ?? '', 'delivered', { From: 'whatsapp:+14155238886' }),
    );
    expect((await message(conv?.id ?? '', botMessage.id)).delivery?.status).toBe('failed');
  });

  it('an unknown SID is answered 204 and logged', async () => {
    const sid = newSid();
    const res = await post('/webhooks/twilio/status', statusParams(sid, 'delivered'));
    expect(res.status).toBe(204);
    expect(gw.logs.lines.some((l) => l.messageSid === sid && /does not know/.test(String(l.msg)))).toBe(true);
  });
});

describe('outbound failures and retries', () => {
  it('retries 429 (after Retry-After) and 5xx, then sends the reply once', async () => {
    fake.script.push(
      { status: 429, code: 20429, message: 'Too Many Requests', retryAfter: '1' },
      { status: 503 },
    );
    const before = fake.requests.length;
    await post('/webhooks/twilio', smsParams({ From: '+14155550107', Body: 'retry me' }));
    const reply = await replyTo('retry me');
    const attempts = fake.requests.slice(before);
    expect(attempts.map((r) => r.status)).toEqual([429, 503, 201]);
    expect((attempts[1]?.at ?? 0) - (attempts[0]?.at ?? 0)).toBeGreaterThanOrEqual(950);
    const conv = await conversationByRef('sms', '+15005550006|+14155550107');
    const bot = await eventually(async () =>
      (await messagesOf(conv?.id ?? '')).find(
        (m) => m.direction === 'outbound' && m.delivery?.status === 'sent',
      ),
    );
    expect(bot.externalId).toBe(reply.sid);
  });

  it('a permanent refusal (63016) leaves the reply failed with the code', async () => {
    fake.script.push({
      status: 400,
      code: 63016,
      message: 'Failed to send freeform message because you are outside the allowed window.',
    });
    await post('/webhooks/twilio', whatsappParams({ From: 'whatsapp:+14155550108', Body: 'too late' }));
    const conv = await eventually(() => conversationByRef('whatsapp', '+14155238886|+14155550108'));
    const bot = await eventually(async () =>
      (await messagesOf(conv.id)).find((m) => m.direction === 'outbound' && m.delivery?.status === 'failed'),
    );
    expect(bot.delivery?.error?.code).toBe('63016');
    expect(bot.delivery?.error?.message).toContain('outside the allowed window');
  });

  it('POST /v1/conversations/:id/send goes out the same way, also for API-created conversations', async () => {
    await post('/webhooks/twilio', smsParams({ From: '+14155550109', Body: 'agent please' }));
    await replyTo('agent please');
    const conv = await conversationByRef('sms', '+15005550006|+14155550109');
    const res = await gw.api(`/v1/conversations/${conv?.id}/send`, {
      method: 'POST',
      json: { text: 'An agent here' },
    });
    expect(res.status).toBe(201);
    const sent = (await res.json()) as Message;
    const recorded = fake.created().find((r) => r.fields.Body === 'An agent here');
    expect(recorded?.fields).toMatchObject({
      From: '+15005550006',
      To: '+14155550109',
      StatusCallback: STATUS_CALLBACK,
    });
    expect(sent).toMatchObject({ externalId: recorded?.sid, delivery: { status: 'sent' } });

    const created = await gw.api('/v1/conversations', {
      method: 'POST',
      json: {
        channel: 'sms',
        participants: [
          { role: 'user', address: '+14155550110' },
          { role: 'bot', address: '+15005550006' },
        ],
      },
    });
    const proactive = (await created.json()) as Conversation;
    const out = await gw.api(`/v1/conversations/${proactive.id}/send`, {
      method: 'POST',
      json: { text: 'Proactive hello' },
    });
    expect(out.status).toBe(201);
    expect(fake.created().find((r) => r.fields.Body === 'Proactive hello')?.fields).toMatchObject({
      From: '+15005550006',
      To: '+14155550110',
    });
  });
});

describe('bad input: the right 4xx, logged once with the reason, nothing stored or sent', () => {
  const from = '+14155550199';
  const ref = `+15005550006|${from}`;

  async function expectRefused(res: Response, status: number, reason: string) {
    expect(res.status).toBe(status);
    expect(refusals(reason).length).toBeGreaterThan(0);
  }

  it('refuses each bad request', async () => {
    const sentBefore = fake.requests.length;
    const logBefore = gw.logs.lines.filter((l) => l.msg === 'Twilio webhook refused').length;
    const params = smsParams({ From: from, Body: 'bad' });

    await expectRefused(
      await post('/webhooks/twilio', params, { signature: null }),
      403,
      'missing_signature',
    );
    await expectRefused(
      await post('/webhooks/twilio', params, { token: 'wrong_token_0123456789abcdef' }),
      403,
      'bad_signature',
    );
    // Signed for the URL the gateway actually listens on (plain http), not for PUBLIC_URL.
    await expectRefused(
      await post('/webhooks/twilio', params, { signedUrl: `${gw.url}/webhooks/twilio` }),
      403,
      'url_mismatch',
    );
    // Behind a proxy whose public name is not PUBLIC_URL: the proxy's host is named as the likely cause.
    await expectRefused(
      await post('/webhooks/twilio', params, {
        signedUrl: 'https://proxy.example.net/webhooks/twilio',
        headers: { 'x-forwarded-host': 'proxy.example.net' },
      }),
      403,
      'url_mismatch',
    );
    await expectRefused(
      await post('/webhooks/twilio', params, { signedUrl: `${PUBLIC_URL}/webhooks/twilio?other=1` }),
      403,
      'bad_signature',
    );
    for (const field of ['MessageSid', 'From', 'To']) {
      const { [field]: _dropped, ...rest } = params;
      if (field === 'MessageSid') delete rest.SmsMessageSid;
      const res = await post('/webhooks/twilio', rest);
      await expectRefused(res, 400, 'missing_fields');
      expect(await res.text()).toContain(field);
    }
    const huge = { ...params, Body: 'x'.repeat(70 * 1024) };
    await expectRefused(await post('/webhooks/twilio', huge), 413, 'body_too_large');
    await expectRefused(
      await post('/webhooks/twilio', params, { contentType: 'text/plain' }),
      415,
      'unsupported_content_type',
    );
    await expectRefused(
      await post(
        '/webhooks/twilio',
        {},
        { rawBody: JSON.stringify(params), contentType: 'application/json' },
      ),
      403,
      'json_without_body_hash',
    );
    await expectRefused(
      await post('/webhooks/twilio/status', statusParams(newSid(), 'delivered'), { signature: 'AAAA' }),
      403,
      'bad_signature',
    );

    // Each refusal logged exactly once: 12 requests, 12 lines.
    const logAfter = gw.logs.lines.filter((l) => l.msg === 'Twilio webhook refused').length;
    expect(logAfter - logBefore).toBe(12);
    expect(gw.logs.text()).not.toContain(AUTH_TOKEN);
    expect(await conversationByRef('sms', ref)).toBeUndefined();
    expect(fake.requests.length).toBe(sentBefore);
    const metrics = await (await fetch(`${gw.url}/metrics`)).text();
    expect(metrics).toMatch(/channel="twilio",reason="url_mismatch"/);
  });
});

describe('start-up', () => {
  it('stops the start with a clear message when the auth token is missing', async () => {
    await expect(
      spawnGateway({ TWILIO_ACCOUNT_SID: ACCOUNT_SID, TWILIO_API_URL: 'http://127.0.0.1:9' }),
    ).rejects.toThrow(
      /TWILIO_AUTH_TOKEN \(twilio channel, not set\): required when TWILIO_ACCOUNT_SID and TWILIO_API_URL are set/,
    );
  });

  it('lists the webhook URLs to paste into the console', () => {
    expect(gw.logs.text()).toContain(`POST ${PUBLIC_URL}/webhooks/twilio`);
  });
});
