/** Outbound planning (splitting, media, routing) and the Twilio settings; no I/O. */
import { describe, expect, it } from 'vitest';
import { configure } from '../../adapters/twilio/config.js';
import { BODY_LIMIT, planParts, routeOf, splitText } from '../../adapters/twilio/outbound.js';
import { forChannel } from '../../src/channels/capabilities.js';
import { PermanentSendError } from '../../src/core/index.js';

const SID = `AC${'a'.repeat(32)}`;
const TOKEN = 'test_auth_token_0123456789abcdef';

describe('splitText', () => {
  it('keeps a short text whole and drops an empty one', () => {
    expect(splitText('  hello  ', 1600)).toEqual(['hello']);
    expect(splitText('   ', 1600)).toEqual([]);
  });

  it('breaks at a paragraph when one falls in the second half', () => {
    const a = 'a'.repeat(70);
    const b = 'b'.repeat(50);
    expect(splitText(`${a}\n\n${b}`, 100)).toEqual([a, b]);
  });

  it('breaks after a sentence before falling back to a word', () => {
    const text = `${'word '.repeat(12)}end. Next sentence goes on and on and on`;
    const parts = splitText(text, 80);
    expect(parts[0]?.endsWith('end.')).toBe(true);
    expect(parts.join(' ')).toBe(text);
  });

  it('breaks at a word boundary and never exceeds the limit', () => {
    const text = Array.from({ length: 800 }, (_, i) => `w${i}`).join(' ');
    const parts = splitText(text, 1600);
    expect(parts.length).toBeGreaterThan(1);
    for (const p of parts) expect(p.length).toBeLessThanOrEqual(1600);
    expect(parts.join(' ')).toBe(text);
  });

  it('cuts a long unbroken run on a character boundary, never inside an emoji', () => {
    const text = '😀'.repeat(60);
    const parts = splitText(text, 51);
    for (const p of parts) {
      expect(p.length).toBeLessThanOrEqual(51);
      expect(p).not.toMatch(/[\uD800-\uDBFF]$/);
    }
    expect(parts.join('')).toBe(text);
  });
});

describe('planParts', () => {
  const img = (n: number) => ({ url: `https://cdn.example.com/${n}.png`, contentType: 'image/png' });

  it('sends SMS text with up to 10 media on the last text part', () => {
    const parts = planParts('sms', {
      text: 'look',
      attachments: Array.from({ length: 11 }, (_, i) => img(i)),
    });
    expect(parts).toHaveLength(2);
    expect(parts[0]?.body).toBe('look');
    expect(parts[0]?.mediaUrl).toHaveLength(10);
    expect(parts[1]).toEqual({ mediaUrl: [img(10).url] });
  });

  it('sends one medium per WhatsApp message, the first with the text as caption', () => {
    const parts = planParts('whatsapp', { text: 'two photos', attachments: [img(1), img(2)] });
    expect(parts).toEqual([{ body: 'two photos', mediaUrl: [img(1).url] }, { mediaUrl: [img(2).url] }]);
  });

  it('keeps a long WhatsApp text out of the caption', () => {
    const parts = planParts('whatsapp', { text: 'x '.repeat(600), attachments: [img(1)] });
    expect(parts.at(-1)).toEqual({ mediaUrl: [img(1).url] });
  });

  it('splits long texts to the channel limit', () => {
    const parts = planParts('sms', { text: 'word '.repeat(1000), attachments: [] });
    expect(parts.length).toBe(Math.ceil(5000 / BODY_LIMIT.sms));
  });

  it('lists quick replies under the text, as the channel table says for a channel without buttons', () => {
    for (const channel of ['sms', 'whatsapp'] as const) {
      const message = forChannel(channel, {
        text: 'Pick one',
        attachments: [],
        quickReplies: [{ title: 'Yes' }, { title: 'No' }],
      });
      expect(planParts(channel, message)).toEqual([{ body: 'Pick one\n\n• Yes\n• No' }]);
    }
  });

  it('refuses an attachment Twilio cannot fetch', () => {
    expect(() =>
      planParts('sms', { text: '', attachments: [{ url: '/local.png', contentType: 'image/png' }] }),
    ).toThrow(PermanentSendError);
  });
});

describe('routeOf', () => {
  it('replies from the number the customer wrote to, with the whatsapp: prefix on WhatsApp', () => {
    expect(
      routeOf({ channel: 'whatsapp', channelRef: '+14155238886|+14155551234', participants: [] }),
    ).toEqual({
      from: 'whatsapp:+14155238886',
      to: 'whatsapp:+14155551234',
    });
    expect(routeOf({ channel: 'sms', channelRef: '+15005550006|+14155551234', participants: [] })).toEqual({
      from: '+15005550006',
      to: '+14155551234',
    });
  });

  it('falls back to the bot and user participants of an API-created conversation', () => {
    const route = routeOf({
      channel: 'sms',
      channelRef: '01HCONVERSATION',
      participants: [
        { id: 'u', role: 'user', address: '+14155550000' },
        { id: 'b', role: 'bot', address: '+15005550006' },
      ],
    });
    expect(route).toEqual({ from: '+15005550006', to: '+14155550000' });
  });

  it('refuses a conversation that names no numbers', () => {
    expect(() => routeOf({ channel: 'sms', channelRef: 'x', participants: [] })).toThrow(
      /GW_TWILIO_NO_ROUTE|channelRef/,
    );
  });
});

describe('configure', () => {
  it('is disabled with no Twilio settings at all', () => {
    expect(configure({})).toEqual({ enabled: false });
  });

  it('is enabled with SID and token, defaulting the API URL', () => {
    expect(configure({ TWILIO_ACCOUNT_SID: SID, TWILIO_AUTH_TOKEN: TOKEN })).toEqual({
      enabled: true,
      config: {
        accountSid: SID,
        authToken: TOKEN,
        apiUrl: 'https://api.twilio.com',
        verify: 'enforce',
        typingIndicator: true,
        sendRatePerSec: 0,
      },
    });
    expect(
      configure({ TWILIO_ACCOUNT_SID: SID, TWILIO_AUTH_TOKEN: TOKEN, TWILIO_TYPING_INDICATOR: 'off' }),
    ).toMatchObject({
      config: { typingIndicator: false },
    });
  });

  it('reads TWILIO_SEND_RATE_PER_SEC (off by default) and refuses a negative or non-number rate', () => {
    const env = { TWILIO_ACCOUNT_SID: SID, TWILIO_AUTH_TOKEN: TOKEN };
    expect(configure({ ...env, TWILIO_SEND_RATE_PER_SEC: '1' })).toMatchObject({
      config: { sendRatePerSec: 1 },
    });
    expect(configure({ ...env, TWILIO_SEND_RATE_PER_SEC: '0.5' })).toMatchObject({
      config: { sendRatePerSec: 0.5 },
    });
    for (const bad of ['-1', 'fast']) {
      const result = configure({ ...env, TWILIO_SEND_RATE_PER_SEC: bad });
      expect('errors' in result && result.errors[0]).toMatch(/^TWILIO_SEND_RATE_PER_SEC:/);
    }
  });

  it('stops the start when the auth token is missing, naming it', () => {
    const result = configure({ TWILIO_ACCOUNT_SID: SID });
    expect(result).toEqual({
      enabled: false,
      errors: [expect.stringMatching(/^TWILIO_AUTH_TOKEN: required when TWILIO_ACCOUNT_SID is set/)],
    });
  });

  it('stops the start when only the API URL is set, naming both missing settings', () => {
    const result = configure({ TWILIO_API_URL: 'http://127.0.0.1:9' });
    expect('errors' in result && result.errors.map((e) => e.split(':')[0])).toEqual([
      'TWILIO_ACCOUNT_SID',
      'TWILIO_AUTH_TOKEN',
    ]);
  });

  it('reports malformed values', () => {
    const result = configure({
      TWILIO_ACCOUNT_SID: 'SK123',
      TWILIO_AUTH_TOKEN: 'short',
      TWILIO_API_URL: 'ftp://x',
    });
    expect('errors' in result && result.errors.map((e) => e.split(':')[0]).sort()).toEqual([
      'TWILIO_ACCOUNT_SID',
      'TWILIO_API_URL',
      'TWILIO_AUTH_TOKEN',
    ]);
  });
});
