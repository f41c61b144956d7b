/**
 * The WhatsApp Cloud API channel end to end on the embedded backend: Meta's webhooks in (signatures
 * computed at run time with node:crypto over the exact bytes sent, plus the shared fixtures), the demo
 * bot's replies out through the Graph API fake, media downloaded through it, statuses back.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WEBHOOK_PATH } from '../../adapters/whatsapp-cloud/index.js';
import type { Conversation, Message } from '../../src/core/model.js';
import type { Bot, BotResponse } from '../../src/pipeline/bot/types.js';
import {
  ACCOUNT_SID,
  AUTH_TOKEN,
  FakeTwilioApi,
  postWebhook as postTwilio,
  whatsappParams,
} from '../fakes/twilio-api.js';
import {
  ACCESS_TOKEN,
  API_VERSION,
  APP_SECRET,
  FakeWhatsAppCloudApi,
  messageFrom,
  newWamid,
  notification,
  PHONE_NUMBER_ID,
  postWebhook,
  sign,
  VERIFY_TOKEN,
} from '../fakes/whatsapp-cloud-api.js';
import { eventually } from '../helpers/eventually.js';
import { API_KEY, startGateway, type TestGateway } from '../helpers/gateway.js';

const PUBLIC_URL = 'https://chat.example.com';

const textFixture = JSON.parse(
  readFileSync(new URL('../fixtures/meta-whatsapp-text-message.json', import.meta.url), 'utf8'),
) as { raw_body: string; headers: Record<string, string>; app_secret_used: string };
const verifyFixture = JSON.parse(
  readFileSync(new URL('../fixtures/meta-whatsapp-verify-get.json', import.meta.url), 'utf8'),
) as { request: { url: string }; expected_response: { status: number; body: string } };
const failedFixture = JSON.parse(
  readFileSync(new URL('../fixtures/meta-whatsapp-status-failed.json', import.meta.url), 'utf8'),
) as { body: { entry: [{ changes: [{ value: { statuses: [{ id: string }] } }] }] } };

function env(fake: FakeWhatsAppCloudApi, extra: Record<string, string> = {}) {
  return {
    PUBLIC_URL,
    WHATSAPP_ACCESS_TOKEN: ACCESS_TOKEN,
    WHATSAPP_APP_SECRET: APP_SECRET,
    WHATSAPP_VERIFY_TOKEN: VERIFY_TOKEN,
    WHATSAPP_PHONE_NUMBER_ID: PHONE_NUMBER_ID,
    WHATSAPP_API_URL: fake.url,
    WHATSAPP_API_VERSION: API_VERSION,
    ...extra,
  };
}

/** Answers `buttons` with 3 quick replies, `list` with 6, anything else like the demo bot. */
const scriptedBot: Bot = {
  kind: 'demo',
  async reply({ message }): Promise<BotResponse> {
    if (message.text === 'buttons') {
      return {
        replies: [
          {
            text: 'How can I help?',
            quickReplies: [
              { title: 'Order status', payload: 'ORDER_STATUS' },
              { title: 'Returns', payload: 'RETURNS' },
              { title: 'Talk to a person' },
            ],
          },
        ],
      };
    }
    if (message.text === 'list') {
      const sizes = ['XS', 'S', 'M', 'L', 'XL'].map((s) => ({ title: `Size ${s}`, payload: `size_${s}` }));
      return {
        replies: [
          {
            text: 'Which size?',
            quickReplies: [
              ...sizes,
              { title: 'I do not know my size, please help me choose', payload: 'help' },
            ],
          },
        ],
      };
    }
    if (message.text.trim() === '') return { replies: [] };
    return { replies: [{ text: `You said: ${message.text}` }] };
  },
};

let fake: FakeWhatsAppCloudApi;
let gw: TestGateway;

function post(body: string | Record<string, unknown>, opts: Parameters<typeof postWebhook>[2] = {}) {
  return postWebhook(
    `${gw.url}${WEBHOOK_PATH}`,
    typeof body === 'string' ? body : JSON.stringify(body),
    opts,
  );
}

async function conversationOf(t: TestGateway, waId: string): Promise<Conversation | undefined> {
  const res = await t.api('/v1/conversations?channel=whatsapp_cloud&take=200');
  const { items } = (await res.json()) as { items: Conversation[] };
  return items.find((c) => c.channelRef === `${PHONE_NUMBER_ID}|${waId}`);
}

async function messagesOf(t: TestGateway, conversationId: string): Promise<Message[]> {
  const res = await t.api(`/v1/conversations/${conversationId}/messages?take=200`);
  return ((await res.json()) as { items: Message[] }).items;
}

/** Waits for the bot's reply to `text` to reach the fake and returns the recorded send. */
function replyTo(text: string) {
  return eventually(() =>
    fake
      .sent()
      .find((r) => r.wamid && (r.json?.text as { body?: string } | undefined)?.body === `You said: ${text}`),
  );
}

function refusals(t: TestGateway, reason: string) {
  return t.logs.lines.filter((l) => l.msg === 'WhatsApp Cloud webhook refused' && l.reason === reason);
}

/** Waits for the conversation's outbound reply to carry an externalId, and returns it. */
async function outboundOf(conversationId: string): Promise<Message> {
  return eventually(async () =>
    (await messagesOf(gw, conversationId)).find(
      (m) => m.direction === 'outbound' && m.delivery?.status !== 'pending',
    ),
  );
}

function statusBody(wamid: string, status: string, extra: Record<string, unknown> = {}) {
  return notification({
    statuses: [
      { id: wamid, status, timestamp: String(Math.floor(Date.now() / 1000)), recipient_id: '1', ...extra },
    ],
  });
}

beforeAll(async () => {
  fake = await FakeWhatsAppCloudApi.start();
  gw = await startGateway(env(fake), { bot: scriptedBot });
});

afterAll(async () => {
  await gw?.stop();
  await fake?.close();
});

describe('WhatsApp Cloud API: subscription handshake', () => {
  it('answers the challenge for the right verify token, 403 otherwise', async () => {
    const query = new URL(verifyFixture.request.url).search;
    const ok = await fetch(`${gw.url}${WEBHOOK_PATH}${query}`);
    expect(ok.status).toBe(verifyFixture.expected_response.status);
    expect(ok.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(await ok.text()).toBe(verifyFixture.expected_response.body);

    const wrong = await fetch(
      `${gw.url}${WEBHOOK_PATH}?hub.mode=subscribe&hub.verify_token=not-the-token&hub.challenge=42`,
    );
    expect(wrong.status).toBe(403);
    expect(await wrong.text()).not.toContain('42');
    const noMode = await fetch(`${gw.url}${WEBHOOK_PATH}?hub.verify_token=${VERIFY_TOKEN}&hub.challenge=42`);
    expect(noMode.status).toBe(403);
    expect(refusals(gw, 'bad_verify_token')).toHaveLength(1);
  });
});

describe('WhatsApp Cloud API: messages in, replies out', () => {
  it('the fixture text is stored with the profile name and answered through the Graph API', async () => {
    // Signed by the fixture (the same app secret), byte for byte as given.
    expect(textFixture.app_secret_used).toBe(APP_SECRET);
    const res = await post(textFixture.raw_body, { signature: textFixture.headers['X-Hub-Signature-256'] });
    expect(res.status).toBe(200);

    const reply = await replyTo('Does it come in another color?');
    expect(reply.path).toBe(`/${API_VERSION}/${PHONE_NUMBER_ID}/messages`);
    expect(reply.authorization).toBe(`Bearer ${ACCESS_TOKEN}`);
    expect(reply.json).toEqual({
      messaging_product: 'whatsapp',
      recipient_type: 'individual',
      to: '16505551234',
      type: 'text',
      text: { body: 'You said: Does it come in another color?' },
    });

    const conv = await conversationOf(gw, '16505551234');
    expect(conv?.channel).toBe('whatsapp_cloud');
    const user = conv?.participants.find((p) => p.role === 'user');
    expect(user).toMatchObject({
      id: 'whatsapp_cloud:+16505551234',
      address: '+16505551234',
      name: 'Sheena Nelson',
    });
    const all = await messagesOf(gw, conv?.id ?? '');
    expect(all[0]).toMatchObject({
      direction: 'inbound',
      text: 'Does it come in another color?',
      externalId: 'wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=',
      name: 'Sheena Nelson',
    });
    const outbound = await outboundOf(conv?.id ?? '');
    expect(outbound).toMatchObject({ externalId: reply.wamid, delivery: { status: 'sent' } });

    // Meta attests the number: the identity is verified and links by phone (SPEC §9).
    const contact = (await (await gw.api(`/v1/contacts/${user?.contactId}`)).json()) as {
      identities: { channel: string; address: string; verified: boolean; source: string }[];
    };
    expect(contact.identities).toContainEqual(
      expect.objectContaining({
        channel: 'whatsapp_cloud',
        address: '+16505551234',
        verified: true,
        source: 'meta_wa_id',
      }),
    );
  });

  it('verifies escaped-unicode bodies over the raw bytes, never over re-serialized JSON', async () => {
    const wamid = newWamid();
    // As Meta sends it: non-ASCII and "/" escaped (CHANNELS.md §4).
    const raw = `{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550783881","phone_number_id":"${PHONE_NUMBER_ID}"},"contacts":[{"profile":{"name":"J\\u00fcrgen"},"wa_id":"4915112345678"}],"messages":[{"from":"4915112345678","id":"${wamid}","timestamp":"1749416383","type":"text","text":{"body":"\\u00e4\\u00f6\\u00e5 caf\\u00e9 1\\/2"}}]}}]}]}`;
    const reserialized = JSON.stringify(JSON.parse(raw));
    expect(reserialized).not.toBe(raw);
    // Signed over the parsed-and-serialized text (what a naive signer or verifier would use): refused.
    const naive = await post(raw, { signature: sign(reserialized) });
    expect(naive.status).toBe(401);
    expect(await conversationOf(gw, '4915112345678')).toBeUndefined();

    expect((await post(raw, { signature: sign(raw) })).status).toBe(200);
    await replyTo('äöå café 1/2');
    const conv = await conversationOf(gw, '4915112345678');
    const [inbound] = await messagesOf(gw, conv?.id ?? '');
    expect(inbound).toMatchObject({ text: 'äöå café 1/2', name: 'Jürgen' });
  });

  it('a redelivered notification (same wamid) is acknowledged again but stored and answered once', async () => {
    const body = JSON.stringify(messageFrom('14155550111', { type: 'text', text: { body: 'only once' } }));
    const first = await post(body);
    const again = await post(body);
    expect([first.status, again.status]).toEqual([200, 200]);
    await replyTo('only once');
    const conv = await conversationOf(gw, '14155550111');
    await outboundOf(conv?.id ?? '');
    const all = await messagesOf(gw, conv?.id ?? '');
    expect(all.filter((m) => m.direction === 'inbound')).toHaveLength(1);
    expect(
      fake.sent().filter((r) => (r.json?.text as { body?: string })?.body === 'You said: only once'),
    ).toHaveLength(1);
  });

  it('downloads media through the Graph API with the token and serves it as an attachment', async () => {
    const content = Buffer.from([0xff, 0xd8, 0xff, 0xe0, ...Buffer.from('fake jpeg bytes')]);
    fake.media.set('media-0001', { content, mimeType: 'image/jpeg' });
    const body = messageFrom('14155550112', {
      type: 'image',
      image: { id: 'media-0001', mime_type: 'image/jpeg', sha256: 'x', caption: 'see photo' },
    });
    expect((await post(body)).status).toBe(200);
    await replyTo('see photo');
    const downloads = fake.requests.filter((r) => r.path === '/media-download/media-0001');
    expect(downloads).toHaveLength(1);
    expect(downloads[0]?.authorization).toBe(`Bearer ${ACCESS_TOKEN}`);

    const conv = await conversationOf(gw, '14155550112');
    const [inbound] = await messagesOf(gw, conv?.id ?? '');
    expect(inbound?.attachments).toEqual([
      {
        url: expect.stringMatching(new RegExp(`^${PUBLIC_URL}/v1/attachments/att_[0-9a-f]{32}$`)),
        contentType: 'image/jpeg',
        name: 'image.jpg',
        size: content.length,
      },
    ]);
    const path = new URL(inbound?.attachments[0]?.url ?? '').pathname;
    const served = await gw.api(path);
    expect(served.status).toBe(200);
    expect(served.headers.get('content-type')).toBe('image/jpeg');
    expect(Buffer.from(await served.arrayBuffer())).toEqual(content);
    // Behind the API key like every /v1 route.
    expect((await fetch(`${gw.url}${path}`)).status).toBe(401);
  });

  it('media over the size limit or gone leaves the message stored without it, saying why', async () => {
    const gone = messageFrom('14155550113', {
      type: 'document',
      document: { id: 'media-missing', filename: 'a.pdf' },
    });
    expect((await post(gone)).status).toBe(200);
    const conv = await eventually(() => conversationOf(gw, '14155550113'));
    const [inbound] = await messagesOf(gw, conv.id);
    expect(inbound?.text).toBe('[document could not be downloaded]');
    expect(inbound?.attachments).toEqual([]);
    expect((inbound?.meta.whatsapp as { mediaError?: string } | undefined)?.mediaError).toMatch(
      /Unsupported get request/,
    );

    // One byte over WHATSAPP_MEDIA_MAX_BYTES (5 MiB by default): refused on its declared size, never fetched.
    fake.media.set('media-big', { content: Buffer.alloc(5 * 1_048_576 + 1), mimeType: 'video/mp4' });
    const big = messageFrom('14155550116', { type: 'video', video: { id: 'media-big', caption: 'big one' } });
    expect((await post(big)).status).toBe(200);
    await replyTo('big one');
    const bigConv = await conversationOf(gw, '14155550116');
    const [video] = await messagesOf(gw, bigConv?.id ?? '');
    expect(video?.attachments).toEqual([]);
    expect((video?.meta.whatsapp as { mediaError?: string } | undefined)?.mediaError).toMatch(
      /larger than WHATSAPP_MEDIA_MAX_BYTES/,
    );
    expect(fake.requests.filter((r) => r.path === '/media-download/media-big')).toEqual([]);
  });

  it('a button reply becomes a quick-reply payload; its title is the text', async () => {
    const body = messageFrom('14155550114', {
      type: 'interactive',
      interactive: { type: 'button_reply', button_reply: { id: 'ORDER_STATUS', title: 'Order status' } },
      context: { from: '15550783881', id: 'wamid.previous' },
    });
    expect((await post(body)).status).toBe(200);
    await replyTo('Order status');
    const conv = await conversationOf(gw, '14155550114');
    const [inbound] = await messagesOf(gw, conv?.id ?? '');
    expect(inbound?.text).toBe('Order status');
    expect(inbound?.meta.quickReply).toEqual({ title: 'Order status', payload: 'ORDER_STATUS' });
    expect(inbound?.meta.replyTo).toEqual({ externalId: 'wamid.previous', sender: '15550783881' });

    const list = messageFrom('14155550114', {
      type: 'interactive',
      interactive: { type: 'list_reply', list_reply: { id: 'size_m', title: 'Medium', description: 'M' } },
    });
    expect((await post(list)).status).toBe(200);
    await replyTo('Medium');
    const all = await messagesOf(gw, conv?.id ?? '');
    expect(all.find((m) => m.text === 'Medium')?.meta.quickReply).toEqual({
      title: 'Medium',
      payload: 'size_m',
    });
  });

  it('a reaction is stored as an activity and not answered', async () => {
    const body = messageFrom('14155550115', {
      type: 'reaction',
      reaction: { message_id: 'wamid.x', emoji: '👍' },
    });
    expect((await post(body)).status).toBe(200);
    const conv = await eventually(() => conversationOf(gw, '14155550115'));
    const [inbound] = await messagesOf(gw, conv.id);
    expect(inbound).toMatchObject({ type: 'activity', text: 'Reacted 👍' });
    expect(inbound?.processing).toBeUndefined();
  });
});

describe('WhatsApp Cloud API: typing indicator', () => {
  it('shows typing on the message being answered, before the reply', async () => {
    const body = messageFrom('14155550170', { type: 'text', text: { body: 'typing please' } });
    const wamid = (body as { entry: [{ changes: [{ value: { messages: [{ id: string }] } }] }] }).entry[0]
      .changes[0].value.messages[0].id;
    expect((await post(body)).status).toBe(200);
    const reply = await replyTo('typing please');
    const typing = await eventually(() => fake.statuses().find((r) => r.json?.message_id === wamid));
    expect(typing.path).toBe(`/${API_VERSION}/${PHONE_NUMBER_ID}/messages`);
    expect(typing.json).toEqual({
      messaging_product: 'whatsapp',
      status: 'read',
      message_id: wamid,
      typing_indicator: { type: 'text' },
    });
    expect(typing.at).toBeLessThanOrEqual(reply.at);
  });

  it('is not shown for what the bot is not asked about (a reaction)', async () => {
    const body = messageFrom('14155550171', {
      type: 'reaction',
      reaction: { message_id: 'wamid.y', emoji: '🎉' },
    });
    const wamid = (body as { entry: [{ changes: [{ value: { messages: [{ id: string }] } }] }] }).entry[0]
      .changes[0].value.messages[0].id;
    expect((await post(body)).status).toBe(200);
    await eventually(() => conversationOf(gw, '14155550171'));
    await new Promise((r) => setTimeout(r, 200));
    expect(fake.statuses().filter((r) => r.json?.message_id === wamid)).toEqual([]);
  });
});

describe('WhatsApp Cloud API: statuses', () => {
  it('are monotonic: read then a late delivered stays read', async () => {
    const body = messageFrom('14155550120', { type: 'text', text: { body: 'status please' } });
    expect((await post(body)).status).toBe(200);
    const reply = await replyTo('status please');
    const conv = await conversationOf(gw, '14155550120');
    const outbound = await outboundOf(conv?.id ?? '');
    expect(outbound.externalId).toBe(reply.wamid);

    expect((await post(statusBody(reply.wamid ?? '', 'read'))).status).toBe(200);
    expect((await post(statusBody(reply.wamid ?? '', 'delivered'))).status).toBe(200);
    const after = (await messagesOf(gw, conv?.id ?? '')).find((m) => m.id === outbound.id);
    expect(after?.delivery?.status).toBe('read');
  });

  it('failed carries the error code and a clear reason (the 131047 fixture)', async () => {
    const body = messageFrom('16505551299', { type: 'text', text: { body: 'will fail later' } });
    expect((await post(body)).status).toBe(200);
    const reply = await replyTo('will fail later');
    const conv = await conversationOf(gw, '16505551299');
    const outbound = await outboundOf(conv?.id ?? '');
    const failed = structuredClone(failedFixture.body);
    failed.entry[0].changes[0].value.statuses[0].id = reply.wamid ?? '';
    failed.entry[0].changes[0].value.statuses[0] = {
      ...failed.entry[0].changes[0].value.statuses[0],
    };
    expect((await post(JSON.stringify(failed))).status).toBe(200);
    const after = await eventually(async () =>
      (await messagesOf(gw, conv?.id ?? '')).find(
        (m) => m.id === outbound.id && m.delivery?.status === 'failed',
      ),
    );
    expect(after.delivery?.error?.code).toBe('131047');
    expect(after.delivery?.error?.message).toMatch(
      /^WhatsApp error 131047: Re-engagement message: more than 24 hours/,
    );
  });

  it('a status for an unknown wamid is acknowledged and ignored', async () => {
    expect((await post(statusBody(newWamid(), 'delivered'))).status).toBe(200);
  });
});

describe('WhatsApp Cloud API: quick replies out', () => {
  const sentTo = (waId: string) =>
    eventually(() => fake.sent().find((r) => r.json?.to === waId && r.json?.type === 'interactive'));

  it('up to 3 become reply buttons whose ids are the payloads', async () => {
    expect((await post(messageFrom('14155550160', { type: 'text', text: { body: 'buttons' } }))).status).toBe(
      200,
    );
    const sent = await sentTo('14155550160');
    expect(sent.json?.interactive).toEqual({
      type: 'button',
      body: { text: 'How can I help?' },
      action: {
        buttons: [
          { type: 'reply', reply: { id: 'ORDER_STATUS', title: 'Order status' } },
          { type: 'reply', reply: { id: 'RETURNS', title: 'Returns' } },
          { type: 'reply', reply: { id: 'Talk to a person', title: 'Talk to a person' } },
        ],
      },
    });
  });

  it('4 to 10 become a list; a long title is cut and kept whole in the description', async () => {
    expect((await post(messageFrom('14155550161', { type: 'text', text: { body: 'list' } }))).status).toBe(
      200,
    );
    const sent = await sentTo('14155550161');
    const interactive = sent.json?.interactive as {
      type: string;
      body: { text: string };
      action: { button: string; sections: { rows: { id: string; title: string; description?: string }[] }[] };
    };
    expect(interactive.type).toBe('list');
    expect(interactive.body).toEqual({ text: 'Which size?' });
    expect(interactive.action.button).toBe('Choose');
    const rows = interactive.action.sections.flatMap((s) => s.rows);
    expect(rows).toHaveLength(6);
    expect(rows[0]).toEqual({ id: 'size_XS', title: 'Size XS' });
    expect(rows[5]?.id).toBe('help');
    expect(rows[5]?.title.length).toBeLessThanOrEqual(24);
    expect(rows[5]?.title).toMatch(/…$/);
    expect(rows[5]?.description).toBe('I do not know my size, please help me choose');
  });
});

describe('WhatsApp Cloud API: outbound errors', () => {
  it('a Graph API 4xx fails the reply with Meta code and a clear reason', async () => {
    fake.script.push({
      status: 400,
      code: 131026,
      message: '(#131026) Message Undeliverable.',
      details: 'Message Undeliverable.',
    });
    const body = messageFrom('14155550130', { type: 'text', text: { body: 'to a dead number' } });
    expect((await post(body)).status).toBe(200);
    const conv = await eventually(() => conversationOf(gw, '14155550130'));
    const failed = await eventually(async () =>
      (await messagesOf(gw, conv.id)).find(
        (m) => m.direction === 'outbound' && m.delivery?.status === 'failed',
      ),
    );
    expect(failed.delivery?.error?.code).toBe('131026');
    expect(failed.delivery?.error?.message).toMatch(/^WhatsApp error 131026: Message undeliverable/);
    // Refused for good: sent once, not retried.
    expect(fake.sent().filter((r) => r.json?.to === '14155550130')).toHaveLength(1);
  });
});

describe('WhatsApp Cloud API: rate limits', () => {
  it('a 429 with a rate-limit code is retried after Retry-After and the reply goes out', async () => {
    fake.script.push({ status: 429, code: 130429, message: '(#130429) Rate limit hit', retryAfter: '0' });
    const body = messageFrom('14155550131', { type: 'text', text: { body: 'busy hour' } });
    expect((await post(body)).status).toBe(200);
    const reply = await replyTo('busy hour');
    const attempts = fake.sent().filter((r) => r.json?.to === '14155550131');
    expect(attempts.map((r) => r.status)).toEqual([429, 200]);
    const conv = await conversationOf(gw, '14155550131');
    const outbound = await outboundOf(conv?.id ?? '');
    expect(outbound).toMatchObject({ externalId: reply.wamid, delivery: { status: 'sent' } });
  });
});

describe('WhatsApp Cloud API: refused webhooks store nothing', () => {
  const body = (waId: string) =>
    JSON.stringify(messageFrom(waId, { type: 'text', text: { body: 'refused' } }));

  it('unsigned and forged are 401', async () => {
    const unsigned = await post(body('14155550140'), { signature: null });
    expect(unsigned.status).toBe(401);
    const forged = await post(body('14155550141'), {
      signature: sign(body('14155550141'), 'not-the-app-secret-000'),
    });
    expect(forged.status).toBe(401);
    const malformed = await post(body('14155550142'), { signature: 'sha1=abc' });
    expect(malformed.status).toBe(401);
    expect(refusals(gw, 'missing_signature')).toHaveLength(1);
    expect(refusals(gw, 'bad_signature').length).toBeGreaterThanOrEqual(2);
    expect(refusals(gw, 'malformed_signature')).toHaveLength(1);
    for (const waId of ['14155550140', '14155550141', '14155550142']) {
      expect(await conversationOf(gw, waId)).toBeUndefined();
    }
  });

  it('oversized is 413, not JSON is 415, bad JSON and non-notifications are 400', async () => {
    const huge = JSON.stringify(
      messageFrom('14155550143', { type: 'text', text: { body: 'x'.repeat(300_000) } }),
    );
    expect((await post(huge)).status).toBe(413);
    const form = await post(body('14155550144'), { contentType: 'application/x-www-form-urlencoded' });
    expect(form.status).toBe(415);
    expect((await post('{"object":')).status).toBe(400);
    expect((await post(JSON.stringify({ object: 'page', entry: [] }))).status).toBe(400);
    const noId = messageFrom('14155550145', { type: 'text', text: { body: 'x' } });
    // biome-ignore lint/suspicious/noExplicitAny: poking a hole in the fixture
    delete (noId as any).entry[0].changes[0].value.messages[0].id;
    expect((await post(JSON.stringify(noId))).status).toBe(400);
    expect(refusals(gw, 'body_too_large')).toHaveLength(1);
    expect(refusals(gw, 'unsupported_content_type')).toHaveLength(1);
    expect(refusals(gw, 'malformed_json')).toHaveLength(1);
    expect(refusals(gw, 'malformed_payload')).toHaveLength(2);
    for (const waId of ['14155550143', '14155550144', '14155550145']) {
      expect(await conversationOf(gw, waId)).toBeUndefined();
    }
    const metrics = await (
      await fetch(`${gw.url}/metrics`, { headers: { authorization: `Bearer ${API_KEY}` } })
    ).text();
    expect(metrics).toMatch(
      /switchboard_requests_rejected_total\{[^}]*channel="whatsapp_cloud"[^}]*reason="body_too_large"[^}]*\} 1/,
    );
  });
});

describe('WhatsApp Cloud API: WHATSAPP_VERIFY=report', () => {
  let report: TestGateway;
  beforeAll(async () => {
    report = await startGateway(env(fake, { WHATSAPP_VERIFY: 'report' }));
  });
  afterAll(async () => {
    await report?.stop();
  });

  it('accepts a forged request but never trusts its sender', async () => {
    const raw = JSON.stringify(
      messageFrom('14155550150', { type: 'text', text: { body: 'forged but kept' } }),
    );
    const res = await postWebhook(`${report.url}${WEBHOOK_PATH}`, raw, {
      signature: sign(raw, 'wrong-secret-0000000'),
    });
    expect(res.status).toBe(200);
    const conv = await eventually(() => conversationOf(report, '14155550150'));
    const user = conv.participants.find((p) => p.role === 'user');
    const contact = (await (await report.api(`/v1/contacts/${user?.contactId}`)).json()) as {
      identities: { channel: string; verified: boolean }[];
    };
    expect(contact.identities).toEqual([
      expect.objectContaining({ channel: 'whatsapp_cloud', verified: false }),
    ]);
    expect(report.logs.lines.some((l) => l.reason === 'bad_signature' && l.mode === 'report')).toBe(true);
  });
});

describe('WhatsApp Cloud API next to Twilio WhatsApp', () => {
  let twilioApi: FakeTwilioApi;
  let both: TestGateway;
  beforeAll(async () => {
    twilioApi = await FakeTwilioApi.start();
    both = await startGateway(
      env(fake, {
        TWILIO_ACCOUNT_SID: ACCOUNT_SID,
        TWILIO_AUTH_TOKEN: AUTH_TOKEN,
        TWILIO_API_URL: twilioApi.url,
      }),
    );
  });
  afterAll(async () => {
    await both?.stop();
    await twilioApi?.close();
  });

  it('keeps each channel its own conversation, and the same number one contact', async () => {
    const viaTwilio = whatsappParams({
      From: 'whatsapp:+14155550180',
      WaId: '14155550180',
      Body: 'via twilio',
    });
    const twilioRes = await postTwilio(`${both.url}/webhooks/twilio`, viaTwilio, {
      signedUrl: `${PUBLIC_URL}/webhooks/twilio`,
    });
    expect(twilioRes.status).toBe(200);
    const raw = JSON.stringify(messageFrom('14155550180', { type: 'text', text: { body: 'via meta' } }));
    expect((await postWebhook(`${both.url}${WEBHOOK_PATH}`, raw)).status).toBe(200);

    const cloud = await eventually(() => conversationOf(both, '14155550180'));
    const list = (await (await both.api('/v1/conversations?channel=whatsapp&take=200')).json()) as {
      items: Conversation[];
    };
    const twilioConv = list.items.find((c) => c.channelRef === '+14155238886|+14155550180');
    expect(twilioConv).toBeDefined();
    expect(twilioConv?.id).not.toBe(cloud.id);
    const contactOf = (c: Conversation | undefined) =>
      c?.participants.find((p) => p.role === 'user')?.contactId;
    expect(contactOf(cloud)).toBeDefined();
    expect(contactOf(cloud)).toBe(contactOf(twilioConv));
    // Each reply leaves through the channel its conversation came by.
    await eventually(() => twilioApi.created().find((r) => r.fields.Body === 'You said: via twilio'));
    await eventually(() =>
      fake.sent().find((r) => (r.json?.text as { body?: string })?.body === 'You said: via meta'),
    );
  });
});

describe('WhatsApp Cloud API: pacing per phone number (WHATSAPP_SEND_RATE_PER_SEC)', () => {
  let paced: TestGateway;
  beforeAll(async () => {
    paced = await startGateway(env(fake, { WHATSAPP_SEND_RATE_PER_SEC: '2' }), { bot: scriptedBot });
  });
  afterAll(async () => {
    await paced?.stop();
  });

  it('spaces sends from one business number at the rate, whichever conversation they answer', async () => {
    const customers = ['14155550190', '14155550191', '14155550192'];
    const statuses = await Promise.all(
      customers.map(async (waId, i) => {
        const raw = JSON.stringify(messageFrom(waId, { type: 'text', text: { body: `paced ${i}` } }));
        return (await postWebhook(`${paced.url}${WEBHOOK_PATH}`, raw)).status;
      }),
    );
    expect(statuses).toEqual([200, 200, 200]);
    const sends = await eventually(() => {
      const s = fake.sent().filter((r) => r.wamid && customers.includes(String(r.json?.to)));
      return s.length === customers.length && s;
    });
    const at = sends.map((s) => s.at).sort((x, y) => x - y);
    // 2 a second: 500 ms apart (timer tolerance); unpaced, the three would leave together.
    for (let i = 1; i < at.length; i++) expect(at[i]! - at[i - 1]!).toBeGreaterThanOrEqual(470);
  });

  it("holds the number's other sends behind Meta's 130429 Retry-After", async () => {
    fake.script.push({ status: 429, code: 130429, message: '(#130429) Rate limit hit', retryAfter: '2' });
    const first = JSON.stringify(messageFrom('14155550193', { type: 'text', text: { body: 'throttled' } }));
    expect((await postWebhook(`${paced.url}${WEBHOOK_PATH}`, first)).status).toBe(200);
    const throttled = await eventually(() =>
      fake.sent().find((r) => r.json?.to === '14155550193' && r.status === 429),
    );
    const second = JSON.stringify(messageFrom('14155550194', { type: 'text', text: { body: 'behind it' } }));
    expect((await postWebhook(`${paced.url}${WEBHOOK_PATH}`, second)).status).toBe(200);
    const sent = await eventually(
      () => fake.sent().find((r) => r.json?.to === '14155550194' && r.wamid),
      10_000,
    );
    // Paced alone it would leave 500 ms after the first; the 2 s Retry-After holds it (timer tolerance).
    expect(sent.at - throttled.at).toBeGreaterThanOrEqual(1_950);
  });
});
