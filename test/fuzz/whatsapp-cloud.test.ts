/**
 * Fuzzing the WhatsApp Cloud API webhook with notifications that pass the signature check: random
 * messages, statuses and shapes, each signed at run time over its exact bytes. A valid signature
 * proves the request is Meta's, not that its content is sane: whatever it holds, the answer is below
 * 500, nothing is logged at error level, and the gateway is healthy afterwards.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ACCESS_TOKEN,
  APP_SECRET,
  FakeWhatsAppCloudApi,
  PHONE_NUMBER_ID,
  sign,
  VERIFY_TOKEN,
} from '../fakes/whatsapp-cloud-api.js';
import { API_KEY, startGateway, type TestGateway } from '../helpers/gateway.js';
import {
  describeRequest,
  errorLines,
  expectHealthy,
  fuzzParams,
  type RawRequest,
  rawRequest,
} from './harness.js';

let fake: FakeWhatsAppCloudApi;
let gw: TestGateway;

beforeAll(async () => {
  fake = await FakeWhatsAppCloudApi.start();
  fake.media.set('m1', { content: Buffer.from('bytes'), mimeType: 'image/png' });
  gw = await startGateway({
    PUBLIC_URL: 'https://chat.example.com',
    WHATSAPP_ACCESS_TOKEN: ACCESS_TOKEN,
    WHATSAPP_APP_SECRET: APP_SECRET,
    WHATSAPP_VERIFY_TOKEN: VERIFY_TOKEN,
    WHATSAPP_PHONE_NUMBER_ID: PHONE_NUMBER_ID,
    WHATSAPP_API_URL: fake.url,
  });
});
afterAll(async () => {
  await gw?.stop();
  await fake?.close();
});

const statuses = new Map<number, number>();

const text = fc.oneof(
  fc.string({ maxLength: 30 }),
  fc.string({ unit: 'grapheme', maxLength: 30 }),
  fc.constantFrom('', '__proto__', 'constructor', '\u0000', '+15550001', 'wamid.x'),
);
/** Any JSON value, small and shallow, for fields whose shape the adapter should not trust. */
const anything = fc.oneof(
  text,
  fc.integer(),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.array(text, { maxLength: 3 }),
  fc.dictionary(text, text, { maxKeys: 3 }),
);
const waId = fc.oneof(fc.constantFrom('16505551234', '4915112345678'), text, fc.integer());

const message = fc.record(
  {
    from: waId,
    id: fc.oneof(
      fc.string({ minLength: 1, maxLength: 20 }).map((s) => `wamid.${s}`),
      anything,
    ),
    timestamp: anything,
    type: fc.oneof(
      fc.constantFrom('text', 'image', 'document', 'audio', 'video', 'sticker', 'interactive', 'button'),
      fc.constantFrom('location', 'contacts', 'reaction', 'unsupported', 'order', 'system'),
      text,
    ),
    text: fc.oneof(fc.record({ body: anything }), anything),
    image: fc.oneof(fc.record({ id: fc.constantFrom('m1', 'missing'), caption: anything }), anything),
    document: anything,
    interactive: fc.oneof(
      fc.record({ type: text, button_reply: fc.record({ id: anything, title: anything }) }),
      fc.record({ type: text, list_reply: anything }),
      anything,
    ),
    button: anything,
    location: fc.oneof(fc.record({ latitude: anything, longitude: anything, name: anything }), anything),
    contacts: fc.oneof(fc.array(fc.record({ name: anything, phones: anything }), { maxLength: 2 }), anything),
    reaction: anything,
    context: anything,
    referral: anything,
    errors: anything,
  },
  { requiredKeys: ['from', 'id', 'type'] },
);
const status = fc.record(
  {
    id: fc.oneof(fc.constantFrom('wamid.unknown'), anything),
    status: fc.oneof(fc.constantFrom('sent', 'delivered', 'read', 'failed', 'deleted'), anything),
    errors: fc.oneof(
      fc.array(fc.record({ code: anything, title: anything, error_data: anything })),
      anything,
    ),
    recipient_id: anything,
  },
  { requiredKeys: ['id', 'status'] },
);
const value = fc.record(
  {
    messaging_product: anything,
    metadata: fc.oneof(fc.constant({ phone_number_id: PHONE_NUMBER_ID }), anything),
    contacts: fc.oneof(
      fc.array(fc.record({ wa_id: waId, profile: fc.record({ name: anything }) })),
      anything,
    ),
    messages: fc.oneof(fc.array(message, { maxLength: 3 }), anything),
    statuses: fc.oneof(fc.array(status, { maxLength: 3 }), anything),
    errors: anything,
  },
  { requiredKeys: [] },
);
const body = fc.record({
  object: fc.oneof(fc.constant('whatsapp_business_account'), anything),
  entry: fc.oneof(
    fc.array(
      fc.record({
        id: anything,
        changes: fc.oneof(
          fc.array(fc.record({ field: fc.oneof(fc.constant('messages'), text), value }), { maxLength: 2 }),
          anything,
        ),
      }),
      { maxLength: 2 },
    ),
    anything,
  ),
});

const request: fc.Arbitrary<RawRequest> = body.map((b) => {
  const raw = JSON.stringify(b);
  return {
    method: 'POST',
    path: '/webhooks/whatsapp-cloud',
    headers: { 'content-type': 'application/json', 'x-hub-signature-256': sign(raw) },
    body: raw,
  };
});

describe('fuzz: WhatsApp Cloud API webhook with valid signatures', () => {
  it('answers any signed notification below 500', async () => {
    await fc.assert(
      fc.asyncProperty(request, async (req) => {
        const res = await rawRequest(gw.url, req);
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        if (res.status >= 500)
          throw new Error(`${res.status} for ${describeRequest(req)}: ${res.body.slice(0, 300)}`);
      }),
      fuzzParams(0x3e7a),
    );
    expect(errorLines(gw.logs)).toEqual([]);
    expect(gw.logs.lines.filter((l) => l.reason === 'bad_signature')).toEqual([]);
    expect(statuses.get(200) ?? 0).toBeGreaterThan(0);
    // The fuzzing reaches past the parser: some of what it sent was stored as messages.
    const list = await gw.api('/v1/conversations?channel=whatsapp_cloud&take=10');
    expect(((await list.json()) as { items: unknown[] }).items.length).toBeGreaterThan(0);
  });

  it('is healthy afterwards, and the replies to what was accepted went out without errors', async () => {
    await expectHealthy(gw.url, API_KEY);
    await new Promise((r) => setTimeout(r, 500));
    expect(errorLines(gw.logs)).toEqual([]);
  });
});
