/** Mapping Twilio's webhook parameters (shared fixtures) onto the conversation model. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  channelRefOf,
  describeError,
  parseChannelRef,
  toInbound,
  toStatusUpdate,
} from '../../adapters/twilio/inbound.js';

const fixture = (name: string) =>
  JSON.parse(readFileSync(new URL(`../fixtures/${name}`, import.meta.url), 'utf8'));
const sms = fixture('twilio-sms-inbound.json').request.form_params;
const media = fixture('twilio-whatsapp-inbound-media.json').request.form_params;
const variants = fixture('twilio-whatsapp-inbound-variants.json').variants;
const undelivered = fixture('twilio-status-callback-undelivered.json').request.form_params;

function inbound(params: Record<string, string | string[]>) {
  const result = toInbound(params);
  if (!result.ok) throw new Error(result.reason);
  return result.value;
}

describe('toInbound', () => {
  it('maps an SMS: channel, conversation key (our number | customer), dedupe key, text', () => {
    const m = inbound(sms);
    expect(m.channel).toBe('sms');
    expect(m.channelRef).toBe('+15005550006|+14155551234');
    expect(m.dedupeKey).toBe('SM11111111111111111111111111111111');
    expect(m.message.text).toBe('Hello, world! Çava? 👋');
    expect(m.message.externalId).toBe('SM11111111111111111111111111111111');
    expect(m.message.attachments).toEqual([]);
    expect(m.from).toEqual({ id: 'sms:+14155551234', role: 'user', address: '+14155551234' });
    expect(m.message.meta?.twilio).toMatchObject({
      messageSid: m.dedupeKey,
      to: '+15005550006',
      numSegments: '1',
    });
  });

  it('maps WhatsApp media: prefix stripped from the key, profile name, attachments', () => {
    const m = inbound(media);
    expect(m.channel).toBe('whatsapp');
    expect(m.channelRef).toBe('+14155238886|+14155551234');
    expect(m.from).toEqual({
      id: 'whatsapp:+14155551234',
      role: 'user',
      address: '+14155551234',
      name: 'Jane Doe',
    });
    expect(m.message.text).toBe('see photo');
    expect(m.message.attachments).toEqual([{ url: media.MediaUrl0, contentType: 'image/jpeg' }]);
    expect(m.message.meta?.twilio).toMatchObject({ waId: '14155551234', messageType: 'image' });
  });

  it('reads up to NumMedia items, skipping missing or non-http URLs', () => {
    const m = inbound({
      ...sms,
      NumMedia: '3',
      MediaUrl0: 'https://api.twilio.com/a',
      MediaContentType0: 'image/png',
      MediaUrl1: 'javascript:alert(1)',
      MediaUrl2: 'https://api.twilio.com/c',
      MediaUrl3: 'https://api.twilio.com/ignored',
    });
    expect(m.message.attachments).toEqual([
      { url: 'https://api.twilio.com/a', contentType: 'image/png' },
      { url: 'https://api.twilio.com/c', contentType: 'application/octet-stream' },
    ]);
  });

  it('maps a quick-reply button and the quoted message', () => {
    const m = inbound(variants.quick_reply_button.form_params);
    expect(m.message.text).toBe('Yes, reschedule');
    expect(m.message.meta?.button).toEqual({ text: 'Yes, reschedule', payload: 'RESCHEDULE_YES' });
    expect(m.message.meta?.replyTo).toEqual({
      externalId: 'MM55555555555555555555555555555555',
      sender: 'whatsapp:+14155238886',
    });
  });

  it('uses the button text when Body is empty', () => {
    const m = inbound({ ...variants.quick_reply_button.form_params, Body: '' });
    expect(m.message.text).toBe('Yes, reschedule');
  });

  it('maps a shared location into meta and, with no Body, into the text', () => {
    const m = inbound(variants.location.form_params);
    expect(m.message.meta?.location).toEqual({
      latitude: 37.7879277,
      longitude: -122.3937508,
      address: '375 Beale St, San Francisco, CA 94105',
      label: 'Twilio HQ',
    });
    expect(m.message.text).toBe(
      'Location: Twilio HQ, 375 Beale St, San Francisco, CA 94105 (37.7879277, -122.3937508)',
    );
  });

  it('ignores a location that is not numeric', () => {
    const m = inbound({ ...sms, Latitude: 'north', Longitude: '1' });
    expect(m.message.meta?.location).toBeUndefined();
  });

  it('refuses a webhook without MessageSid, From or To, naming what is missing', () => {
    const { MessageSid: _a, SmsMessageSid: _b, From: _c, ...rest } = sms;
    expect(toInbound(rest)).toEqual({ ok: false, reason: 'missing MessageSid, From' });
    expect(toInbound({ ...sms, To: '' })).toEqual({ ok: false, reason: 'missing To' });
  });
});

describe('channelRef', () => {
  it('round-trips our number and the customer number', () => {
    const ref = channelRefOf('whatsapp:+14155238886', 'whatsapp:+14155551234');
    expect(parseChannelRef(ref)).toEqual({ ours: '+14155238886', customer: '+14155551234' });
    expect(parseChannelRef('01HXYZ')).toBeUndefined();
    expect(parseChannelRef('a|b|c')).toBeUndefined();
  });
});

describe('toStatusUpdate', () => {
  it('maps undelivered to failed with the code and a readable reason', () => {
    const result = toStatusUpdate(undelivered);
    expect(result).toEqual({
      ok: true,
      value: {
        channel: 'sms',
        messageSid: 'SM44444444444444444444444444444444',
        twilioStatus: 'undelivered',
        status: 'failed',
        error: {
          code: '30003',
          message:
            'Twilio error 30003: Unreachable destination handset (https://www.twilio.com/docs/api/errors/30003)',
        },
      },
    });
  });

  it('maps sent, delivered, read, failed; queued, sending and accepted change nothing', () => {
    const statusOf = (s: string) => {
      const r = toStatusUpdate({
        MessageSid: 'SM1',
        MessageStatus: s,
        From: 'whatsapp:+1',
        To: 'whatsapp:+2',
      });
      return r.ok ? r.value.status : 'refused';
    };
    expect(['sent', 'delivered', 'read', 'failed', 'undelivered'].map(statusOf)).toEqual([
      'sent',
      'delivered',
      'read',
      'failed',
      'failed',
    ]);
    expect(['queued', 'sending', 'accepted', 'scheduled'].map(statusOf)).toEqual([
      undefined,
      undefined,
      undefined,
      undefined,
    ]);
  });

  it('takes the channel from the whatsapp: prefix and explains 63016', () => {
    const r = toStatusUpdate({
      MessageSid: 'SM1',
      MessageStatus: 'failed',
      ErrorCode: '63016',
      From: 'whatsapp:+14155238886',
      To: 'whatsapp:+14155551234',
    });
    expect(r.ok && r.value.channel).toBe('whatsapp');
    expect(r.ok && r.value.error?.code).toBe('63016');
    expect(r.ok && r.value.error?.message).toMatch(/24-hour messaging window/);
  });

  it("prefers Twilio's own ErrorMessage and links unknown codes", () => {
    expect(describeError('12345', 'Something specific')).toBe(
      'Twilio error 12345: Something specific (https://www.twilio.com/docs/api/errors/12345)',
    );
    expect(describeError('99999')).toMatch(/^Twilio error 99999: .+errors\/99999\)$/);
  });

  it('refuses a callback without MessageSid or MessageStatus', () => {
    expect(toStatusUpdate({ MessageStatus: 'sent' })).toEqual({ ok: false, reason: 'missing MessageSid' });
    expect(toStatusUpdate({ MessageSid: 'SM1' })).toEqual({ ok: false, reason: 'missing MessageStatus' });
  });
});
