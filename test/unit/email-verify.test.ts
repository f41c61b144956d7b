import { createHmac } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { AcceptRule } from '../../adapters/email/config.js';
import { isAcceptedRecipient, replyTokenOf, verifyMailgunSignature } from '../../adapters/email/verify.js';

const fixture = JSON.parse(
  readFileSync(new URL('../fixtures/mailgun-route-forward-parsed.json', import.meta.url), 'utf8'),
) as { webhook_signing_key_used: string; form_fields: Record<string, string> };

const KEY = 'test-webhook-signing-key-0123456789';
/** Mailgun's documented scheme: hex HMAC-SHA256(key, timestamp + token). */
const sign = (timestamp: string, token: string, key = KEY) =>
  createHmac('sha256', key)
    .update(timestamp + token)
    .digest('hex');

describe('Mailgun route signature', () => {
  it('accepts the published vector and a signature made at run time', () => {
    const v = fixture.form_fields;
    expect(verifyMailgunSignature(v, fixture.webhook_signing_key_used, Number(v.timestamp) + 10)).toEqual({
      ok: true,
      token: v.token,
    });
    const now = 1_800_000_000;
    const fields = { timestamp: String(now), token: 'a'.repeat(50) };
    expect(
      verifyMailgunSignature({ ...fields, signature: sign(fields.timestamp, fields.token) }, KEY, now).ok,
    ).toBe(true);
  });

  it('refuses a wrong key, a tampered token, a malformed or missing signature', () => {
    const now = 1_800_000_000;
    const timestamp = String(now);
    const token = 'b'.repeat(50);
    const good = sign(timestamp, token);
    const check = (f: Record<string, string | undefined>) => verifyMailgunSignature(f, KEY, now);
    expect(check({ timestamp, token, signature: sign(timestamp, token, 'another-signing-key-000') })).toEqual(
      {
        ok: false,
        reason: 'bad_signature',
      },
    );
    expect(check({ timestamp, token: `${token}x`, signature: good })).toMatchObject({
      reason: 'bad_signature',
    });
    expect(check({ timestamp, token, signature: 'zz' })).toMatchObject({ reason: 'bad_signature' });
    expect(check({ timestamp, token })).toMatchObject({ reason: 'missing_signature' });
    expect(check({ timestamp: 'soon', token, signature: good })).toMatchObject({
      reason: 'missing_signature',
    });
  });

  it('refuses timestamps outside the 5 minute window either way', () => {
    const t = 1_800_000_000;
    const f = { timestamp: String(t), token: 'c'.repeat(50), signature: sign(String(t), 'c'.repeat(50)) };
    expect(verifyMailgunSignature(f, KEY, t + 300).ok).toBe(true);
    expect(verifyMailgunSignature(f, KEY, t + 301)).toMatchObject({ reason: 'stale_timestamp' });
    expect(verifyMailgunSignature(f, KEY, t - 301)).toMatchObject({ reason: 'stale_timestamp' });
  });
});

describe('recipients and reply tokens', () => {
  const rules: AcceptRule[] = [
    { kind: 'address', local: 'support', domain: 'help.example.com' },
    { kind: 'domain', domain: 'desk.example.org' },
  ];

  it('accepts the mailbox, its +tag variants and whole domains only', () => {
    expect(isAcceptedRecipient('support@help.example.com', rules)).toBe(true);
    expect(isAcceptedRecipient('Support+abc@HELP.example.com', rules)).toBe(true);
    expect(isAcceptedRecipient('anyone@desk.example.org', rules)).toBe(true);
    expect(isAcceptedRecipient('sales@help.example.com', rules)).toBe(false);
    expect(isAcceptedRecipient('support@other.example', rules)).toBe(false);
    expect(isAcceptedRecipient('support@help.example.com.evil.example', rules)).toBe(false);
    expect(isAcceptedRecipient('not-an-address', rules)).toBe(false);
  });

  it('reads a reply token only from an accepted address and only in the token shape', () => {
    expect(replyTokenOf('support+abcdefghijklmnop@help.example.com', rules)).toBe('abcdefghijklmnop');
    expect(replyTokenOf('support+abcdefghijklmnop@elsewhere.example', rules)).toBeNull();
    expect(replyTokenOf('support+t_8f2c@help.example.com', rules)).toBeNull();
    expect(replyTokenOf('support@help.example.com', rules)).toBeNull();
  });
});
