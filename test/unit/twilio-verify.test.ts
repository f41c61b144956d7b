/**
 * X-Twilio-Signature checks against the published and computed vectors in the shared fixtures, and
 * against signatures made at run time with twilio-node's own `getExpectedTwilioSignature`.
 */
import { readFileSync } from 'node:fs';
import twilio from 'twilio';
import { describe, expect, it } from 'vitest';
import { hasBodyHash, parseForm, verifyTwilioRequest } from '../../adapters/twilio/verify.js';

const fixture = (name: string) =>
  JSON.parse(readFileSync(new URL(`../fixtures/${name}`, import.meta.url), 'utf8'));
const vectors = fixture('twilio-signature-vectors.json');
const sms = fixture('twilio-sms-inbound.json');
const whatsapp = fixture('twilio-whatsapp-inbound-media.json');
const jsonVariant = fixture('twilio-json-body-sha256.json');

const TOKEN = sms.auth_token_used_for_signature as string;

describe('parseForm', () => {
  it('decodes %20 and + alike and keeps repeated names as arrays', () => {
    expect(parseForm('Body=a%20b+c%21&Digits=5678&Digits=1234&Digits=1234&X=')).toEqual({
      Body: 'a b c!',
      Digits: ['5678', '1234', '1234'],
      X: '',
    });
  });

  it('keeps parameters named like object members as ordinary entries', () => {
    const params = parseForm('constructor=a&toString=b&__proto__=c&__proto__=d&hasOwnProperty=e');
    expect(Object.getPrototypeOf(params)).toBeNull();
    expect(Object.entries(params)).toEqual([
      ['constructor', 'a'],
      ['toString', 'b'],
      ['__proto__', ['c', 'd']],
      ['hasOwnProperty', 'e'],
    ]);
  });

  it('verifies a run-time signature over parameters named like object members', () => {
    const url = 'https://chat.example.com/webhooks/twilio';
    const body = 'MessageSid=SM1&constructor=a&toString=b&__proto__=c';
    // Built from entries: a `__proto__` key in an object literal would set the prototype instead.
    const signed = Object.fromEntries(new URLSearchParams(body));
    const signature = twilio.getExpectedTwilioSignature(TOKEN, url, signed);
    expect(verifyTwilioRequest({ authToken: TOKEN, signature, url, body, kind: 'form' }).ok).toBe(true);
  });

  it('decodes the fixture SMS body to its documented parameters', () => {
    expect(parseForm(sms.request.raw_body)).toEqual(sms.request.form_params);
  });
});

describe('verifyTwilioRequest', () => {
  it('accepts the computed inbound SMS vector on its raw (percent-encoded) body', () => {
    const result = verifyTwilioRequest({
      authToken: TOKEN,
      signature: sms.request.headers['X-Twilio-Signature'],
      url: sms.request.url,
      body: sms.request.raw_body,
      kind: 'form',
    });
    expect(result).toEqual({ ok: true, params: sms.request.form_params });
  });

  it('accepts the same parameters encoded with + for spaces (Twilio may send either)', () => {
    const body = new URLSearchParams(sms.request.form_params).toString();
    expect(body).toContain('+');
    const result = verifyTwilioRequest({
      authToken: TOKEN,
      signature: sms.request.headers['X-Twilio-Signature'],
      url: sms.request.url,
      body,
      kind: 'form',
    });
    expect(result.ok).toBe(true);
  });

  it('accepts the WhatsApp media vector, whose URL has a query string, and refuses it without the query', () => {
    const base = {
      authToken: TOKEN,
      signature: whatsapp.request.headers['X-Twilio-Signature'],
      body: whatsapp.request.raw_body,
      kind: 'form' as const,
    };
    expect(verifyTwilioRequest({ ...base, url: whatsapp.request.url }).ok).toBe(true);
    expect(verifyTwilioRequest({ ...base, url: whatsapp.request.url.split('?')[0] })).toEqual({
      ok: false,
      reason: 'bad_signature',
    });
  });

  it('signs repeated parameters de-duplicated and sorted (vector T5)', () => {
    const v = vectors.array_params;
    const result = verifyTwilioRequest({
      authToken: v.token,
      signature: v.signature,
      url: v.url,
      body: 'Sid=CA123&SidAccount=AC123&Digits=5678&Digits=1234&Digits=1234',
      kind: 'form',
    });
    expect(result).toEqual({
      ok: true,
      params: { Sid: 'CA123', SidAccount: 'AC123', Digits: ['5678', '1234', '1234'] },
    });
  });

  it('verifies run-time signatures over every received parameter, so an added or changed one fails', () => {
    const url = 'https://chat.example.com/webhooks/twilio';
    const params = { MessageSid: 'SM1', From: '+14155551234', To: '+15005550006', Body: 'hé + ü' };
    const signature = twilio.getExpectedTwilioSignature(TOKEN, url, params);
    const check = (body: string) =>
      verifyTwilioRequest({ authToken: TOKEN, signature, url, body, kind: 'form' });
    expect(check(new URLSearchParams(params).toString()).ok).toBe(true);
    expect(check(new URLSearchParams({ ...params, NewField: 'x' }).toString())).toEqual({
      ok: false,
      reason: 'bad_signature',
    });
    expect(check(new URLSearchParams({ ...params, Body: 'changed' }).toString())).toEqual({
      ok: false,
      reason: 'bad_signature',
    });
  });

  it('refuses a wrong token, a missing header, another scheme and a trailing slash', () => {
    const base = { body: sms.request.raw_body, kind: 'form' as const, url: sms.request.url };
    const signature = sms.request.headers['X-Twilio-Signature'];
    expect(verifyTwilioRequest({ ...base, authToken: 'another_token_0123456789abcdef', signature }).ok).toBe(
      false,
    );
    expect(verifyTwilioRequest({ ...base, authToken: TOKEN, signature: undefined })).toEqual({
      ok: false,
      reason: 'missing_signature',
    });
    expect(verifyTwilioRequest({ ...base, authToken: TOKEN, signature: '' }).ok).toBe(false);
    const http = sms.request.url.replace('https://', 'http://');
    expect(verifyTwilioRequest({ ...base, authToken: TOKEN, signature, url: http }).ok).toBe(false);
    expect(verifyTwilioRequest({ ...base, authToken: TOKEN, signature, url: `${sms.request.url}/` }).ok).toBe(
      false,
    );
  });

  it('names a signature made for the received URL rather than PUBLIC_URL a url_mismatch', () => {
    const received = 'http://127.0.0.1:3000/webhooks/twilio';
    const params = { MessageSid: 'SM1', From: '+1', To: '+2' };
    const signature = twilio.getExpectedTwilioSignature(TOKEN, received, params);
    const result = verifyTwilioRequest({
      authToken: TOKEN,
      signature,
      url: 'https://chat.example.com/webhooks/twilio',
      receivedUrls: ['https://127.0.0.1:3000/webhooks/twilio', received],
      body: new URLSearchParams(params).toString(),
      kind: 'form',
    });
    expect(result).toEqual({ ok: false, reason: 'url_mismatch' });
  });

  it('verifies the bodySHA256 JSON variant and refuses a tampered body', () => {
    expect(hasBodyHash(jsonVariant.url)).toBe(true);
    const base = {
      authToken: jsonVariant.token,
      signature: jsonVariant.signature_over_url_only,
      url: jsonVariant.url,
    };
    expect(verifyTwilioRequest({ ...base, body: jsonVariant.body, kind: 'json' })).toEqual({
      ok: true,
      params: { property: 'value', boolean: 'true' },
    });
    expect(
      verifyTwilioRequest({ ...base, body: '{"property": "other", "boolean": true}', kind: 'json' }),
    ).toEqual({
      ok: false,
      reason: 'body_hash_mismatch',
    });
  });

  it('refuses a JSON body whose URL carries no bodySHA256, since the signature would not cover it', () => {
    const url = 'https://chat.example.com/webhooks/twilio';
    const signature = twilio.getExpectedTwilioSignature(TOKEN, url, {});
    expect(
      verifyTwilioRequest({ authToken: TOKEN, signature, url, body: '{"MessageSid":"SM1"}', kind: 'json' }),
    ).toEqual({
      ok: false,
      reason: 'json_without_body_hash',
    });
  });

  it('treats a malformed URL as a failed check, not a crash', () => {
    expect(
      verifyTwilioRequest({ authToken: TOKEN, signature: 'x', url: 'not a url', body: '', kind: 'form' }).ok,
    ).toBe(false);
  });
});
