/**
 * The identity facts each channel hands the core (SPEC §9) and the linking rules, without I/O: only
 * what a provider or the site vouches for is verified. Tokens are signed at run time.
 */
import jwt from 'jsonwebtoken';
import { describe, expect, it } from 'vitest';
import type { AuthVerdict } from '../../adapters/email/auth.js';
import { senderIdentity } from '../../adapters/email/receive.js';
import { toInbound } from '../../adapters/twilio/inbound.js';
import type { TokenKeys } from '../../adapters/webchat/config.js';
import { verifyVisitorToken, visitorIdentity } from '../../adapters/webchat/verify.js';
import { indexKeyOf, linkKeyOf } from '../../src/contacts/rules.js';
import { smsParams, whatsappParams } from '../fakes/twilio-api.js';

const pass = (over: Partial<AuthVerdict>): AuthVerdict => ({
  verdict: 'pass',
  via: 'dns',
  spf: 'none',
  dkim: 'pass',
  dmarc: 'pass',
  aligned: 'dkim',
  from: 'a@example.com',
  ...over,
});

describe('email: only a DKIM signature verified for the From domain vouches for the sender', () => {
  it('SMTP DKIM (checked here) and Mailgun DKIM verify; nothing else does', () => {
    expect(senderIdentity(pass({}))).toEqual({ verified: true, source: 'smtp_dkim' });
    expect(senderIdentity(pass({ via: 'mailgun' }))).toEqual({ verified: true, source: 'mailgun_dkim' });
    // Passed by SPF, with a DKIM pass for another domain: not the person's word.
    expect(senderIdentity(pass({ aligned: 'spf' }))).toEqual({ verified: false, source: 'none' });
    expect(senderIdentity(pass({ via: 'authentication-results' }))).toMatchObject({ verified: false });
    expect(senderIdentity(pass({ verdict: 'fail', reason: 'not_aligned' }))).toMatchObject({
      verified: false,
    });
  });
});

describe('Twilio: SMS numbers are the carrier’s; WhatsApp numbers need a matching WaId', () => {
  it('marks each sender accordingly', () => {
    const sms = toInbound(smsParams({ From: '+14155550100' }));
    expect(sms.ok && sms.value.identity).toEqual({ verified: true, source: 'twilio' });
    const wa = toInbound(whatsappParams({ From: 'whatsapp:+14155550100', WaId: '14155550100' }));
    expect(wa.ok && wa.value.identity).toEqual({ verified: true, source: 'twilio_waid' });
    const other = toInbound(whatsappParams({ From: 'whatsapp:+14155550100', WaId: '14155550199' }));
    expect(other.ok && other.value.identity).toMatchObject({ verified: false });
    const none = whatsappParams({ From: 'whatsapp:+14155550100' });
    delete none.WaId;
    const missing = toInbound(none);
    expect(missing.ok && missing.value.identity).toMatchObject({ verified: false });
  });
});

describe('web chat: claims are verified only with their OpenID *_verified claim', () => {
  const secret = 'unit-test-secret-0123456789-abcdefghij';
  const keys: TokenKeys = { mode: 'secret', secret, algorithms: ['HS256'] };
  const verifier = { keys };
  const visitor = (claims: Record<string, unknown>) => {
    const now = Math.floor(Date.now() / 1000);
    const token = jwt.sign({ sub: 'v-1', exp: now + 60, ...claims }, secret, { algorithm: 'HS256' });
    const check = verifyVisitorToken(token, verifier);
    if (!check.ok) throw new Error(check.detail);
    return visitorIdentity(check.visitor);
  };

  it('reads email and phone_number with and without their *_verified claims', () => {
    expect(
      visitor({
        email: 'a@b.example',
        email_verified: true,
        phone_number: '+14155550100',
        phone_number_verified: true,
      }),
    ).toEqual({
      verified: true,
      source: 'webchat_jwt',
      address: 'v-1',
      also: [
        { channel: 'email', address: 'a@b.example', verified: true, source: 'webchat_jwt' },
        { channel: 'sms', address: '+14155550100', verified: true, source: 'webchat_jwt' },
      ],
    });
    const loose = visitor({ email: 'a@b.example', email_verified: 'true', phone_number: '+14155550100' });
    expect(loose.also?.map((i) => i.verified)).toEqual([false, false]);
  });
});

describe('linking rules', () => {
  it('SMS and WhatsApp share the number; email addresses compare case-insensitively', () => {
    expect(linkKeyOf({ channel: 'sms', address: '+14155550100' })).toBe('phone:+14155550100');
    expect(linkKeyOf({ channel: 'whatsapp', address: '+14155550100' })).toBe('phone:+14155550100');
    expect(linkKeyOf({ channel: 'sms', address: 'SHORTCODE' })).toBeNull();
    expect(linkKeyOf({ channel: 'email', address: 'Pat@Example.com' })).toBe('email:pat@example.com');
    expect(linkKeyOf({ channel: 'webchat', address: 'v-1' })).toBeNull();
  });

  it('keeps unverified identities apart from the verified one and from each other by source', () => {
    const base = { channel: 'email' as const, address: 'a@b.example' };
    const keys = new Set([
      indexKeyOf({ ...base, verified: true, source: 'smtp_dkim' }),
      indexKeyOf({ ...base, verified: false, source: 'none' }),
      indexKeyOf({ ...base, verified: false, source: 'webchat_jwt' }),
    ]);
    expect(keys.size).toBe(3);
    expect(indexKeyOf({ ...base, verified: true, source: 'webchat_jwt' })).toBe('email:a@b.example');
  });
});
