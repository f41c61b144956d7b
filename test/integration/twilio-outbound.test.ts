/**
 * The real twilio client, pointed at the recording fake through ForwardingRequestClient: what reaches
 * the REST API, retries on 429/5xx honouring Retry-After, and how final failures are reported.
 */
import { pino } from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  createMessagesClient,
  type MessagesClient,
  type SenderDeps,
  sendMessage,
} from '../../adapters/twilio/outbound.js';
import { createTypingClient, showTyping, typingBaseUrl } from '../../adapters/twilio/typing.js';
import { type Conversation, type Message, PermanentSendError } from '../../src/core/index.js';
import { MemoryRateGate, pacer } from '../../src/pacing/index.js';
import { ACCOUNT_SID, AUTH_TOKEN, FakeTwilioApi } from '../fakes/twilio-api.js';

const logger = pino({ level: 'silent' });
const STATUS_URL = 'https://chat.example.com/webhooks/twilio/status';
const FAST = { attempts: 4, baseMs: 10, capMs: 50, maxRetryAfterMs: 5_000, timeoutMs: 5_000 };

let fake: FakeTwilioApi;
let client: MessagesClient;
let remembered: string[];

function conversation(channel: 'sms' | 'whatsapp'): Conversation {
  const now = new Date().toISOString();
  return {
    id: 'conv_1',
    channel,
    channelRef: channel === 'sms' ? '+15005550006|+14155551234' : '+14155238886|+14155551234',
    participants: [],
    status: 'open',
    handoff: null,
    sessionId: 'sess_1',
    sessionStartedAt: now,
    sessionState: {},
    meta: {},
    createdAt: now,
    updatedAt: now,
    lastMessageAt: now,
  };
}

function message(text: string, attachments: Message['attachments'] = []): Message {
  const now = new Date().toISOString();
  return {
    id: 'msg_1',
    conversationId: 'conv_1',
    seq: 2,
    type: 'bot',
    text,
    meta: {},
    entities: [],
    direction: 'outbound',
    attachments,
    createdAt: now,
    updatedAt: now,
  };
}

function deps(): SenderDeps {
  return {
    messages: client,
    statusCallback: STATUS_URL,
    remember: async (sid) => void remembered.push(sid),
    logger,
  };
}

beforeAll(async () => {
  fake = await FakeTwilioApi.start();
  client = createMessagesClient(ACCOUNT_SID, AUTH_TOKEN, fake.url, logger, FAST);
});

afterAll(async () => {
  await fake.close();
});

beforeEach(() => {
  fake.reset();
  remembered = [];
});

describe('sending through the twilio client', () => {
  it('posts From/To/Body/StatusCallback to the account Messages resource with Basic auth', async () => {
    const result = await sendMessage(deps(), conversation('sms'), message('Hi there'));
    expect(fake.requests).toHaveLength(1);
    const [req] = fake.requests;
    expect(req?.method).toBe('POST');
    expect(req?.path).toBe(`/2010-04-01/Accounts/${ACCOUNT_SID}/Messages.json`);
    expect(req?.user).toBe(ACCOUNT_SID);
    expect(req?.fields).toEqual({
      To: '+14155551234',
      From: '+15005550006',
      Body: 'Hi there',
      StatusCallback: STATUS_URL,
    });
    expect(result).toEqual({ externalId: req?.sid, status: 'sent', remembered: true });
    expect(remembered).toEqual([req?.sid]);
  });

  it('keeps a base path of TWILIO_API_URL in front of the API path', async () => {
    const prefixed = createMessagesClient(ACCOUNT_SID, AUTH_TOKEN, `${fake.url}/proxy/`, logger, FAST);
    await prefixed.create({ to: '+1', from: '+2', body: 'x', statusCallback: STATUS_URL });
    expect(fake.requests[0]?.path).toBe(`/proxy/2010-04-01/Accounts/${ACCOUNT_SID}/Messages.json`);
  });

  it('sends WhatsApp from the whatsapp: number, with media, and long text in parts in order', async () => {
    const text = `${'First paragraph. '.repeat(50).trim()}\n\n${'Second paragraph. '.repeat(50).trim()}`;
    const result = await sendMessage(
      deps(),
      conversation('whatsapp'),
      message(text, [{ url: 'https://cdn.example.com/a.jpg', contentType: 'image/jpeg' }]),
    );
    const created = fake.created();
    expect(created.map((r) => [r.fields.From, r.fields.To])).toEqual(
      created.map(() => ['whatsapp:+14155238886', 'whatsapp:+14155551234']),
    );
    expect(created).toHaveLength(2);
    expect(created[0]?.fields.Body).toBe('First paragraph. '.repeat(50).trim());
    expect(created[1]?.fields.Body).toBe('Second paragraph. '.repeat(50).trim());
    expect(created[1]?.form.MediaUrl).toEqual(['https://cdn.example.com/a.jpg']);
    expect(result.externalId).toBe(created[0]?.sid);
    expect(remembered).toEqual(created.map((r) => r.sid));
  });

  it("waits for the sender's slot before each part when TWILIO_SEND_RATE_PER_SEC is set", async () => {
    const gate = new MemoryRateGate();
    const asked: string[] = [];
    const pace = pacer(gate, 'twilio', 4)!;
    const text = `${'First paragraph. '.repeat(60).trim()}\n\n${'Second paragraph. '.repeat(60).trim()}`;
    await sendMessage(
      {
        ...deps(),
        pace: async (from) => {
          asked.push(from);
          await pace(from);
        },
      },
      conversation('whatsapp'),
      message(text),
    );
    const created = fake.created();
    expect(created).toHaveLength(2);
    expect(asked).toEqual(['whatsapp:+14155238886', 'whatsapp:+14155238886']);
    // 4 a second: the second part leaves 250 ms after the first (timer tolerance).
    expect(created[1]!.at - created[0]!.at).toBeGreaterThanOrEqual(235);
    // Off (rate 0) means no pacer at all.
    expect(pacer(gate, 'twilio', 0)).toBeUndefined();
  });

  it('sends several MMS media as repeated MediaUrl fields', async () => {
    await sendMessage(
      deps(),
      conversation('sms'),
      message('', [
        { url: 'https://cdn.example.com/1.png', contentType: 'image/png' },
        { url: 'https://cdn.example.com/2.png', contentType: 'image/png' },
      ]),
    );
    expect(fake.created()[0]?.form.MediaUrl).toEqual([
      'https://cdn.example.com/1.png',
      'https://cdn.example.com/2.png',
    ]);
    expect(fake.created()[0]?.fields.Body).toBeUndefined();
  });

  it('retries a 429 after the Retry-After it names, then a 503, and succeeds', async () => {
    fake.script.push(
      { status: 429, code: 20429, message: 'Too Many Requests', retryAfter: '1' },
      { status: 503 },
    );
    const result = await sendMessage(deps(), conversation('sms'), message('patience'));
    expect(fake.requests.map((r) => r.status)).toEqual([429, 503, 201]);
    const [first, second] = fake.requests;
    expect((second?.at ?? 0) - (first?.at ?? 0)).toBeGreaterThanOrEqual(950);
    expect(result.externalId).toBe(fake.requests[2]?.sid);
  });

  it('gives up after the configured attempts with Twilio code and a readable reason', async () => {
    fake.script.push(
      { status: 500 },
      { status: 502 },
      { status: 503 },
      { status: 503, code: 20503, message: 'Service unavailable' },
    );
    const error = await sendMessage(deps(), conversation('sms'), message('x')).catch((e: unknown) => e);
    expect(fake.requests).toHaveLength(4);
    expect(error).toBeInstanceOf(PermanentSendError);
    expect(error).toMatchObject({ code: '20503' });
    expect((error as Error).message).toMatch(
      /^Gave up on a transient error: Twilio error 20503: Service unavailable/,
    );
  });

  it('does not wait out a Retry-After longer than the policy allows', async () => {
    fake.script.push({ status: 429, code: 20429, message: 'Too Many Requests', retryAfter: '3600' });
    const started = Date.now();
    const error = await sendMessage(deps(), conversation('sms'), message('x')).catch((e: unknown) => e);
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(fake.requests).toHaveLength(1);
    expect(error).toMatchObject({ code: '20429' });
  });

  it('does not retry a 4xx: 63016 fails at once with its code', async () => {
    fake.script.push({
      status: 400,
      code: 63016,
      message: 'Failed to send freeform message because you are outside the allowed window.',
    });
    const error = await sendMessage(deps(), conversation('whatsapp'), message('late')).catch(
      (e: unknown) => e,
    );
    expect(fake.requests).toHaveLength(1);
    expect(error).toBeInstanceOf(PermanentSendError);
    expect(error).toMatchObject({ code: '63016' });
    expect((error as Error).message).toContain('outside the allowed window');
    expect((error as Error).message).toContain('https://www.twilio.com/docs/api/errors/63016');
  });

  it('reports which parts went out when a later part fails', async () => {
    fake.script.push(
      { status: 201 },
      {
        status: 400,
        code: 21617,
        message: 'The concatenated message body exceeds the 1600 character limit.',
      },
    );
    const error = await sendMessage(
      deps(),
      conversation('sms'),
      message(`${'a'.repeat(1500)}\n\n${'b'.repeat(1500)}`),
    ).catch((e: unknown) => e);
    expect((error as Error).message).toMatch(/1 of 2 parts were sent/);
    expect(remembered).toHaveLength(1);
  });

  it('reports an unreachable API with the connection error', async () => {
    const closed = await FakeTwilioApi.start();
    const url = closed.url;
    await closed.close();
    const unreachable = createMessagesClient(ACCOUNT_SID, AUTH_TOKEN, url, logger, FAST);
    const error = await sendMessage(
      { ...deps(), messages: unreachable },
      conversation('sms'),
      message('x'),
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PermanentSendError);
    expect(error).toMatchObject({ code: 'ECONNREFUSED' });
    expect((error as Error).message).toMatch(/^Could not reach the Twilio API/);
  });
});

describe('the typing indicator through the twilio client', () => {
  const whatsappConversation = { id: 'conv_1', channel: 'whatsapp' as const };
  const sid = `SM${'ab'.repeat(16)}`;

  it("posts channel and messageId to Messaging v2's Typing.json with Basic auth, once", async () => {
    const typing = createTypingClient(ACCOUNT_SID, AUTH_TOKEN, fake.url, logger);
    await showTyping(typing, logger, whatsappConversation, {
      type: 'typing',
      on: true,
      about: { id: 'msg_1', externalId: sid, meta: {} },
    });
    expect(fake.requests).toMatchObject([
      {
        method: 'POST',
        path: '/v2/Indicators/Typing.json',
        user: ACCOUNT_SID,
        fields: { channel: 'whatsapp', messageId: sid },
        status: 200,
      },
    ]);
  });

  it('sends nothing for SMS, for off, or without the SID; a refusal is swallowed, not retried', async () => {
    const typing = createTypingClient(ACCOUNT_SID, AUTH_TOKEN, fake.url, logger);
    const about = { id: 'msg_1', externalId: sid, meta: {} };
    await showTyping(typing, logger, { id: 'conv_1', channel: 'sms' }, { type: 'typing', on: true, about });
    await showTyping(typing, logger, whatsappConversation, { type: 'typing', on: false, about });
    await showTyping(typing, logger, whatsappConversation, { type: 'typing', on: true });
    expect(fake.requests).toEqual([]);
    await showTyping(typing, logger, whatsappConversation, {
      type: 'typing',
      on: true,
      about: { ...about, externalId: `SM${'0'.repeat(31)}` },
    });
    expect(fake.requests).toHaveLength(0); // not a SID: never sent
    // Twilio unreachable: resolves all the same (the reply must not wait on it or fail for it).
    const unreachable = createTypingClient(ACCOUNT_SID, AUTH_TOKEN, 'http://127.0.0.1:1', logger);
    await expect(
      showTyping(unreachable, logger, whatsappConversation, { type: 'typing', on: true, about }),
    ).resolves.toBeUndefined();
  });

  it("goes to Twilio's Messaging host by default, elsewhere to TWILIO_API_URL", () => {
    expect(typingBaseUrl('https://api.twilio.com')).toBe('https://messaging.twilio.com');
    expect(typingBaseUrl(fake.url)).toBe(fake.url);
  });
});
