/**
 * The WhatsApp Cloud API adapter's pure parts: settings that fail closed, the signature and handshake
 * checks against the shared Meta fixtures, notification mapping and the outbound plan.
 */
import { readFileSync } from 'node:fs';
import pino from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { configure } from '../../adapters/whatsapp-cloud/config.js';
import { parseNotification } from '../../adapters/whatsapp-cloud/inbound.js';
import { interactiveOf, planPayloads, routeOf } from '../../adapters/whatsapp-cloud/outbound.js';
import { TypingIndicators } from '../../adapters/whatsapp-cloud/typing.js';
import { checkChallenge, signatureOf, verifySignature } from '../../adapters/whatsapp-cloud/verify.js';
import { linkKeyOf } from '../../src/contacts/rules.js';
import { PermanentSendError } from '../../src/core/index.js';

const fixture = (name: string) =>
  JSON.parse(readFileSync(new URL(`../fixtures/${name}`, import.meta.url), 'utf8')) as Record<
    string,
    unknown
  >;

const FULL = {
  WHATSAPP_ACCESS_TOKEN: `EAAG${'x'.repeat(60)}`,
  WHATSAPP_APP_SECRET: 'test_app_secret_0123456789abcdef',
  WHATSAPP_VERIFY_TOKEN: 'my-verify-token',
  WHATSAPP_PHONE_NUMBER_ID: '106540352242922',
};

describe('WhatsApp Cloud API settings', () => {
  it('are off without any WHATSAPP_* setting', () => {
    expect(configure({})).toEqual({ enabled: false });
  });

  it('are on with the four required settings, with defaults for the rest', () => {
    const result = configure(FULL);
    expect(result).toEqual({
      enabled: true,
      config: {
        accessToken: FULL.WHATSAPP_ACCESS_TOKEN,
        appSecret: FULL.WHATSAPP_APP_SECRET,
        verifyToken: FULL.WHATSAPP_VERIFY_TOKEN,
        phoneNumberId: FULL.WHATSAPP_PHONE_NUMBER_ID,
        apiUrl: 'https://graph.facebook.com',
        apiVersion: 'v23.0',
        mediaMaxBytes: 5 * 1_048_576,
        typingIndicator: true,
        verify: 'enforce',
        sendRatePerSec: 80,
      },
    });
  });

  it('fail closed: any setting without the required ones names each missing one', () => {
    const { WHATSAPP_APP_SECRET: _secret, ...noSecret } = FULL;
    const result = configure(noSecret);
    expect(result).toEqual({
      enabled: false,
      errors: [expect.stringMatching(/^WHATSAPP_APP_SECRET: required when/)],
    });

    const onlyUrl = configure({ WHATSAPP_API_URL: 'http://127.0.0.1:9' });
    expect(onlyUrl.enabled).toBe(false);
    expect((onlyUrl as { errors: string[] }).errors.map((e) => e.split(':')[0])).toEqual([
      'WHATSAPP_ACCESS_TOKEN',
      'WHATSAPP_APP_SECRET',
      'WHATSAPP_VERIFY_TOKEN',
      'WHATSAPP_PHONE_NUMBER_ID',
    ]);
    // Report mode alone does not switch the channel on without secrets.
    expect(configure({ WHATSAPP_VERIFY: 'report' }).enabled).toBe(false);
  });

  it('refuse bad values, naming the setting', () => {
    const bad = (extra: Record<string, string>) =>
      (configure({ ...FULL, ...extra }) as { errors?: string[] }).errors?.[0] ?? '';
    expect(bad({ WHATSAPP_PHONE_NUMBER_ID: '+1 555 0100' })).toMatch(/^WHATSAPP_PHONE_NUMBER_ID:/);
    expect(bad({ WHATSAPP_APP_SECRET: 'short' })).toMatch(/^WHATSAPP_APP_SECRET:/);
    expect(bad({ WHATSAPP_VERIFY: 'off' })).toMatch(/^WHATSAPP_VERIFY:/);
    expect(bad({ WHATSAPP_API_URL: 'ftp://x' })).toMatch(/^WHATSAPP_API_URL:/);
    expect(bad({ WHATSAPP_API_VERSION: '23' })).toMatch(/^WHATSAPP_API_VERSION:/);
    expect(bad({ WHATSAPP_MEDIA_MAX_BYTES: '10' })).toMatch(/^WHATSAPP_MEDIA_MAX_BYTES:/);
    expect(bad({ WHATSAPP_TYPING_INDICATOR: 'yes' })).toMatch(/^WHATSAPP_TYPING_INDICATOR:/);
    expect(bad({ WHATSAPP_SEND_RATE_PER_SEC: '-5' })).toMatch(/^WHATSAPP_SEND_RATE_PER_SEC:/);
    expect(bad({ WHATSAPP_SEND_RATE_PER_SEC: 'lots' })).toMatch(/^WHATSAPP_SEND_RATE_PER_SEC:/);
    expect(configure({ ...FULL, WHATSAPP_SEND_RATE_PER_SEC: '1000' })).toMatchObject({
      config: { sendRatePerSec: 1000 },
    });
    expect(configure({ ...FULL, WHATSAPP_TYPING_INDICATOR: 'off' })).toMatchObject({
      config: { typingIndicator: false },
    });
  });
});

describe('X-Hub-Signature-256', () => {
  it('verifies the shared text-message vector over its raw bytes', () => {
    const f = fixture('meta-whatsapp-text-message.json') as {
      raw_body: string;
      headers: Record<string, string>;
      app_secret_used: string;
    };
    const header = f.headers['X-Hub-Signature-256'];
    expect(signatureOf(f.app_secret_used, f.raw_body)).toBe(header);
    expect(verifySignature(f.app_secret_used, header, Buffer.from(f.raw_body))).toEqual({ ok: true });
    expect(verifySignature('another_app_secret_0000', header, Buffer.from(f.raw_body))).toEqual({
      ok: false,
      reason: 'bad_signature',
    });
  });

  it('holds only over the escaped-unicode bytes as sent, not the re-serialized JSON', () => {
    const f = fixture('meta-signature-unicode-escaping.json') as Record<string, string>;
    const raw = f.raw_body_as_sent ?? '';
    const secret = f.app_secret_used ?? '';
    expect(verifySignature(secret, f.sig_over_raw, Buffer.from(raw))).toEqual({ ok: true });
    const reserialized = JSON.stringify(JSON.parse(raw));
    expect(reserialized).toBe(f.reserialized);
    expect(signatureOf(secret, reserialized)).toBe(f.sig_over_JSON_stringify_of_parsed);
    expect(verifySignature(secret, f.sig_over_raw, Buffer.from(reserialized)).ok).toBe(false);
  });

  it('names missing and malformed headers', () => {
    const body = Buffer.from('{}');
    expect(verifySignature('s'.repeat(16), undefined, body)).toEqual({
      ok: false,
      reason: 'missing_signature',
    });
    expect(verifySignature('s'.repeat(16), 'sha1=abcd', body)).toEqual({
      ok: false,
      reason: 'malformed_signature',
    });
    expect(verifySignature('s'.repeat(16), `sha256=${'0'.repeat(63)}`, body)).toEqual({
      ok: false,
      reason: 'malformed_signature',
    });
  });
});

describe('subscription handshake', () => {
  it('echoes the challenge only for mode subscribe and the right token', () => {
    const f = fixture('meta-whatsapp-verify-get.json') as { request: { url: string } };
    const q = new URL(f.request.url).searchParams;
    const query = {
      mode: q.get('hub.mode') ?? undefined,
      token: q.get('hub.verify_token') ?? undefined,
      challenge: q.get('hub.challenge') ?? undefined,
    };
    expect(checkChallenge('my-verify-token', query)).toEqual({ ok: true, challenge: '1158201444' });
    expect(checkChallenge('other-token', query)).toEqual({ ok: false, reason: 'bad_verify_token' });
    expect(checkChallenge('my-verify-token', { ...query, mode: 'unsubscribe' }).ok).toBe(false);
    expect(checkChallenge('my-verify-token', { ...query, token: undefined }).ok).toBe(false);
    expect(checkChallenge('my-verify-token', { ...query, challenge: '<script>' }).ok).toBe(true);
    expect(checkChallenge('my-verify-token', { ...query, challenge: 'a b' }).ok).toBe(false);
  });
});

describe('notification mapping', () => {
  it('maps the shared failed-status fixture to failed with the 131047 reason', () => {
    const f = fixture('meta-whatsapp-status-failed.json') as { body: unknown };
    const parsed = parseNotification(f.body);
    expect(parsed.ok).toBe(true);
    if (!parsed.ok) return;
    expect(parsed.value.messages).toEqual([]);
    expect(parsed.value.statuses).toEqual([
      {
        wamid: 'wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI3QjE5QjcyQkE3NkVDNkQzMjUA',
        metaStatus: 'failed',
        status: 'failed',
        error: {
          code: '131047',
          message: expect.stringMatching(
            /^WhatsApp error 131047: Re-engagement message: .*template.* \(Message failed to send because more than 24 hours/,
          ),
        },
      },
    ]);
  });

  it('maps the text fixture with its sender, channelRef and verified identity', () => {
    const f = fixture('meta-whatsapp-text-message.json') as { body: unknown };
    const parsed = parseNotification(f.body);
    if (!parsed.ok) throw new Error(parsed.reason);
    const [m] = parsed.value.messages;
    expect(m?.inbound).toMatchObject({
      channel: 'whatsapp_cloud',
      channelRef: '106540352242922|16505551234',
      dedupeKey: 'wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=',
      from: {
        id: 'whatsapp_cloud:+16505551234',
        role: 'user',
        address: '+16505551234',
        name: 'Sheena Nelson',
      },
      message: { text: 'Does it come in another color?' },
      identity: { verified: true, source: 'meta_wa_id' },
    });
    expect(m?.media).toBeUndefined();
  });

  it('describes location and contacts as text, and keeps unsupported types from the bot', () => {
    const body = (message: Record<string, unknown>) => ({
      object: 'whatsapp_business_account',
      entry: [
        {
          changes: [
            {
              field: 'messages',
              value: {
                metadata: { phone_number_id: '1234567' },
                messages: [{ from: '15550001', id: 'wamid.a', ...message }],
              },
            },
          ],
        },
      ],
    });
    const first = (message: Record<string, unknown>) => {
      const parsed = parseNotification(body(message));
      if (!parsed.ok) throw new Error(parsed.reason);
      const mapped = parsed.value.messages[0];
      if (!mapped) throw new Error('no message');
      return mapped.inbound;
    };
    const location = first({
      type: 'location',
      location: { latitude: 52.52, longitude: 13.405, name: 'Office', address: 'Berlin' },
    });
    expect(location.message.text).toBe('Location: Office, Berlin (52.52, 13.405)');
    const contacts = first({
      type: 'contacts',
      contacts: [{ name: { formatted_name: 'Ana' }, phones: [{ phone: '+34 600 000 000' }] }],
    });
    expect(contacts.message.text).toBe('Shared contact: Ana (+34 600 000 000)');
    const unsupported = first({
      type: 'unsupported',
      errors: [{ code: 131051, title: 'Message type unknown' }],
    });
    expect(unsupported).toMatchObject({ skipBot: true, message: { type: 'activity' } });
    expect(unsupported.message.text).toMatch(/^\[unsupported message: WhatsApp error 131051/);
  });

  it('links a Cloud API sender by phone number, like SMS and Twilio WhatsApp', () => {
    const key = linkKeyOf({ channel: 'whatsapp_cloud', address: '+16505551234' });
    expect(key).toBe('phone:+16505551234');
    expect(linkKeyOf({ channel: 'whatsapp', address: '+16505551234' })).toBe(key);
    expect(linkKeyOf({ channel: 'sms', address: '+16505551234' })).toBe(key);
    // A sender id that is not a number's digits keeps its address as it is and links nothing.
    expect(linkKeyOf({ channel: 'whatsapp_cloud', address: 'user.abc' })).toBeNull();
  });

  it('refuses bodies that are not Cloud API notifications', () => {
    expect(parseNotification([]).ok).toBe(false);
    expect(parseNotification({ object: 'instagram', entry: [] }).ok).toBe(false);
    expect(parseNotification({ object: 'whatsapp_business_account', entry: [] })).toEqual({
      ok: true,
      value: { messages: [], statuses: [], errors: [], ignored: 0 },
    });
  });
});

describe('outbound plan', () => {
  const qr = (n: number, title = (i: number) => `Option ${i}`) =>
    Array.from({ length: n }, (_, i) => ({ title: title(i), payload: `p${i}` }));

  /** The interactive type `interactiveOf` chose, or undefined when it wrote the choices out. */
  const kindOf = (body: string, replies: ReturnType<typeof qr>) =>
    (interactiveOf(body, replies)?.interactive as { type?: string } | undefined)?.type;

  it('uses buttons for up to 3 short titles, a list for 4 to 10, text beyond that', () => {
    expect(kindOf('Pick', qr(3))).toBe('button');
    expect(kindOf('Pick', qr(4))).toBe('list');
    expect(kindOf('Pick', qr(10))).toBe('list');
    expect(interactiveOf('Pick', qr(11))).toBeUndefined();
    // A title over the button limit of 20 characters goes to a list even for 2 choices.
    expect(
      kindOf(
        'Pick',
        qr(2, () => 'A title that is too long'),
      ),
    ).toBe('list');
    const eleven = planPayloads({ text: 'Pick', attachments: [], quickReplies: qr(11) });
    expect(eleven).toEqual([
      {
        type: 'text',
        text: {
          body: `Pick\n\n${qr(11)
            .map((q) => `• ${q.title}`)
            .join('\n')}`,
        },
      },
    ]);
  });

  it('puts a short text on the first attachment as its caption, and splits long text', () => {
    const image = { url: 'https://cdn.example.com/a.png', contentType: 'image/png' };
    const doc = { url: 'https://cdn.example.com/a.pdf', contentType: 'application/pdf', name: 'a.pdf' };
    expect(planPayloads({ text: 'Here', attachments: [image, doc] })).toEqual([
      { type: 'image', image: { link: image.url, caption: 'Here' } },
      { type: 'document', document: { link: doc.url, filename: 'a.pdf' } },
    ]);
    const long = planPayloads({ text: `${'word '.repeat(1000)}`, attachments: [] });
    expect(long.length).toBe(2);
    for (const p of long) expect((p.text as { body: string }).body.length).toBeLessThanOrEqual(4096);
    expect(() =>
      planPayloads({ text: '', attachments: [{ url: '/v1/x', contentType: 'image/png' }] }),
    ).toThrow(PermanentSendError);
  });

  it('routes to the conversation number, or the default for API-created conversations', () => {
    expect(routeOf({ channelRef: '111111|16505551234', participants: [] }, '999999')).toEqual({
      phoneNumberId: '111111',
      to: '16505551234',
    });
    expect(
      routeOf(
        { channelRef: 'api-made', participants: [{ id: 'u', role: 'user', address: '+16505551234' }] },
        '999999',
      ),
    ).toEqual({ phoneNumberId: '999999', to: '16505551234' });
    expect(() => routeOf({ channelRef: 'x', participants: [] }, '999999')).toThrow(PermanentSendError);
  });
});

describe('typing indicators', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  function rig() {
    const kv = new Map<string, string>();
    const sends: { phoneNumberId: string; payload: Record<string, unknown> }[] = [];
    const typing = new TypingIndicators({
      kv: {
        get: async (k) => kv.get(k) ?? null,
        set: async (k, v) => {
          kv.set(k, v);
        },
        setIfAbsent: async () => true,
        delete: async (k) => {
          kv.delete(k);
        },
      },
      send: async (phoneNumberId, payload) => {
        sends.push({ phoneNumberId, payload });
      },
      logger: pino({ level: 'silent' }),
    });
    return { typing, sends };
  }

  it('refer to the message answered, else the last customer message, and show once per signal', async () => {
    const { typing, sends } = rig();
    const conversation = { id: 'c1', channelRef: '111111|16505551234' };
    await typing.set(conversation, true);
    expect(sends).toEqual([]); // nothing remembered for this conversation: nothing to refer to

    await typing.remember(conversation.channelRef, 'wamid.last');
    await typing.set(conversation, true);
    await typing.set(conversation, true, 'wamid.answered');
    await typing.set(conversation, false); // WhatsApp dismisses it with the reply: nothing to send
    expect(sends).toEqual([
      {
        phoneNumberId: '111111',
        payload: { status: 'read', message_id: 'wamid.last', typing_indicator: { type: 'text' } },
      },
      {
        phoneNumberId: '111111',
        payload: { status: 'read', message_id: 'wamid.answered', typing_indicator: { type: 'text' } },
      },
    ]);
  });
});
