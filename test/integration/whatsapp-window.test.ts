/**
 * WhatsApp's 24-hour customer service window, on Twilio's WhatsApp and on the Cloud API: outside it
 * (here: a conversation the business opened, where the customer never wrote) a free-form send is
 * refused with 422 and stores and sends nothing, an agent's send does not even take the handoff, and
 * an approved template goes out (Twilio: ContentSid + ContentVariables; Cloud API: a template object).
 * Inside it (the customer just wrote) free-form messages and the bot's replies go out as before.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Conversation, Message } from '../../src/core/model.js';
import { WINDOW_MS, windowOpen } from '../../src/whatsapp/window.js';
import { ACCOUNT_SID, AUTH_TOKEN, FakeTwilioApi, postWebhook, whatsappParams } from '../fakes/twilio-api.js';
import {
  ACCESS_TOKEN,
  API_VERSION,
  APP_SECRET,
  FakeWhatsAppCloudApi,
  PHONE_NUMBER_ID,
  VERIFY_TOKEN,
} from '../fakes/whatsapp-cloud-api.js';
import { eventually } from '../helpers/eventually.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';

const PUBLIC_URL = 'https://chat.example.com';
const CONTENT_SID = `HX${'0123456789abcdef'.repeat(2)}`;

let twilioApi: FakeTwilioApi;
let cloudApi: FakeWhatsAppCloudApi;
let gw: TestGateway;

beforeAll(async () => {
  [twilioApi, cloudApi] = await Promise.all([FakeTwilioApi.start(), FakeWhatsAppCloudApi.start()]);
  gw = await startGateway({
    PUBLIC_URL,
    TWILIO_ACCOUNT_SID: ACCOUNT_SID,
    TWILIO_AUTH_TOKEN: AUTH_TOKEN,
    TWILIO_API_URL: twilioApi.url,
    WHATSAPP_ACCESS_TOKEN: ACCESS_TOKEN,
    WHATSAPP_APP_SECRET: APP_SECRET,
    WHATSAPP_VERIFY_TOKEN: VERIFY_TOKEN,
    WHATSAPP_PHONE_NUMBER_ID: PHONE_NUMBER_ID,
    WHATSAPP_API_URL: cloudApi.url,
    WHATSAPP_API_VERSION: API_VERSION,
  });
});

afterAll(async () => {
  await gw?.stop();
  await Promise.all([twilioApi?.close(), cloudApi?.close()]);
});

/** A conversation the business opens with a customer who has not written. */
async function opened(channel: 'whatsapp' | 'whatsapp_cloud', customer: string): Promise<Conversation> {
  const res = await gw.api('/v1/conversations', {
    method: 'POST',
    json: {
      channel,
      participants: [
        { id: `u-${customer}`, role: 'user', name: 'Ada', address: customer },
        ...(channel === 'whatsapp'
          ? [{ id: 'our-number', role: 'bot', name: 'Shop', address: '+14155238886' }]
          : []),
      ],
    },
  });
  expect(res.status).toBe(201);
  return (await res.json()) as Conversation;
}

const send = (conversationId: string, json: Record<string, unknown>) =>
  gw.api(`/v1/conversations/${conversationId}/send`, { method: 'POST', json });

async function messages(conversationId: string): Promise<Message[]> {
  return (
    (await (await gw.api(`/v1/conversations/${conversationId}/messages`)).json()) as { items: Message[] }
  ).items;
}

describe('the window rule', () => {
  it('is open for 24 hours from the customer’s last message, and closed when they never wrote', () => {
    const now = Date.now();
    expect(windowOpen(now - WINDOW_MS + 60_000, now)).toBe(true);
    expect(windowOpen(now - WINDOW_MS - 1, now)).toBe(false);
    expect(windowOpen(null, now)).toBe(false);
  });
});

describe('Twilio WhatsApp', () => {
  it('refuses a free-form message outside the window with 422, storing and sending nothing', async () => {
    const conv = await opened('whatsapp', '+14155550161');
    const res = await send(conv.id, { text: 'Your order shipped' });
    expect(res.status).toBe(422);
    expect(res.headers.get('content-type')).toMatch(/application\/problem\+json/);
    expect(await res.json()).toMatchObject({ code: 'GW_ERR_WHATSAPP_WINDOW_CLOSED', status: 422 });
    expect(await messages(conv.id)).toEqual([]);
    expect(twilioApi.created().filter((r) => r.fields.To === 'whatsapp:+14155550161')).toEqual([]);
  });

  it("refuses an agent's free-form message without taking the handoff", async () => {
    const conv = await opened('whatsapp', '+14155550163');
    const agent = await gw.api(`/v1/conversations/${conv.id}/participants`, {
      method: 'POST',
      json: { id: 'agent-ada', role: 'agent', name: 'Ada Agent' },
    });
    expect(agent.status).toBe(201);
    const res = await send(conv.id, { text: 'Hi, Ada here', from: { id: 'agent-ada' } });
    expect(res.status).toBe(422);
    const after = (await (await gw.api(`/v1/conversations/${conv.id}`)).json()) as Conversation;
    expect(after.status).toBe('open');
    // Only the join's activity line: no agent message.
    expect((await messages(conv.id)).map((m) => m.type)).toEqual(['activity']);
  });

  it('sends a Content API template outside the window', async () => {
    const conv = await opened('whatsapp', '+14155550162');
    const res = await send(conv.id, {
      text: 'Your order 4821 shipped',
      template: { contentSid: CONTENT_SID, variables: { '1': '4821' } },
    });
    expect(res.status).toBe(201);
    const call = await eventually(() =>
      twilioApi.created().find((r) => r.fields.To === 'whatsapp:+14155550162'),
    );
    expect(call.fields.ContentSid).toBe(CONTENT_SID);
    expect(JSON.parse(String(call.fields.ContentVariables))).toEqual({ '1': '4821' });
    expect(call.fields.Body).toBeUndefined();
    const [stored] = await messages(conv.id);
    expect(stored?.text).toBe('Your order 4821 shipped');
    expect(stored?.meta.whatsappTemplate).toEqual({ contentSid: CONTENT_SID, variables: { '1': '4821' } });
  });

  it("refuses a Cloud API template on Twilio's WhatsApp, naming the field", async () => {
    const conv = await opened('whatsapp', '+14155550164');
    const res = await send(conv.id, { text: 'x', template: { name: 'order_update', language: 'en_US' } });
    expect(res.status).toBe(400);
    expect(JSON.stringify(await res.json())).toContain('"template"');
  });

  it('inside the window, answers the customer and sends free-form messages as before', async () => {
    const params = whatsappParams({
      From: 'whatsapp:+14155550165',
      WaId: '14155550165',
      Body: 'where is my order',
    });
    const posted = await postWebhook(`${gw.url}/webhooks/twilio`, params, {
      signedUrl: `${PUBLIC_URL}/webhooks/twilio`,
    });
    expect(posted.status).toBe(200);
    await eventually(() => twilioApi.created().find((r) => r.fields.Body === 'You said: where is my order'));
    const convs = (await (await gw.api('/v1/conversations?channel=whatsapp&take=200')).json()) as {
      items: Conversation[];
    };
    const conv = convs.items.find((c) => c.participants.some((p) => p.address?.endsWith('14155550165')))!;
    const res = await send(conv.id, { text: 'It ships today' });
    expect(res.status).toBe(201);
    await eventually(() => twilioApi.created().find((r) => r.fields.Body === 'It ships today'));
  });
});

describe('WhatsApp Cloud API', () => {
  it('refuses a free-form message outside the window and sends a template', async () => {
    const conv = await opened('whatsapp_cloud', '+14155550171');
    const refused = await send(conv.id, { text: 'Your order shipped' });
    expect(refused.status).toBe(422);
    expect(cloudApi.sent().filter((r) => r.json?.to === '14155550171')).toEqual([]);

    const components = [{ type: 'body', parameters: [{ type: 'text', text: '4821' }] }];
    const res = await send(conv.id, {
      text: 'Your order 4821 shipped',
      template: { name: 'order_update', language: 'en_US', components },
    });
    expect(res.status).toBe(201);
    const sent = await eventually(() => cloudApi.sent().find((r) => r.json?.to === '14155550171'));
    expect(sent.json).toMatchObject({
      type: 'template',
      template: { name: 'order_update', language: { code: 'en_US' }, components },
    });
  });

  it('refuses a Twilio template on the Cloud API', async () => {
    const conv = await opened('whatsapp_cloud', '+14155550172');
    const res = await send(conv.id, { text: 'x', template: { contentSid: CONTENT_SID } });
    expect(res.status).toBe(400);
  });
});
