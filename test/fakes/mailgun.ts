/**
 * Mailgun route posts as Mailgun sends them (`forward()` to a URL, parsed fields), signed at run time
 * with Mailgun's documented scheme: hex HMAC-SHA256(signing key, timestamp + token).
 */
import { createHmac, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';

export const MAILGUN_KEY = 'test-webhook-signing-key-0123456789';

const fixture = JSON.parse(
  readFileSync(new URL('../fixtures/mailgun-route-forward-parsed.json', import.meta.url), 'utf8'),
) as { form_fields: Record<string, string> };

/** Fresh signature fields (`timestamp`, `token`, `signature`) made with `key`. */
export function mailgunSignature(key: string = MAILGUN_KEY): Record<string, string> {
  const timestamp = String(Math.floor(Date.now() / 1000));
  const token = randomBytes(25).toString('hex');
  const signature = createHmac('sha256', key)
    .update(timestamp + token)
    .digest('hex');
  return { timestamp, token, signature };
}

/**
 * A new mail from customer@example.org to support@help.example.com with `text` as its body, signed
 * with `key`. Mailgun's own checks above its `Received` header say SPF and DKIM pass, with a DKIM
 * signature of the From domain, so the gateway takes the sender as authenticated.
 */
export function mailgunForm(opts: { text: string; key?: string; subject?: string }): URLSearchParams {
  const headers = [
    ['X-Mailgun-Dkim-Check-Result', 'Pass'],
    ['X-Mailgun-Spf', 'Pass'],
    ['Received', 'from mail.example.org (mail.example.org [192.0.2.10]) by mxa.mailgun.org with ESMTP'],
    ['Dkim-Signature', 'v=1; a=rsa-sha256; d=example.org; s=sel1; h=from:subject; b=x'],
    ['From', 'Customer Name <customer@example.org>'],
    ['Message-Id', `<mg-${randomBytes(6).toString('hex')}@mail.example.org>`],
    ['Subject', opts.subject ?? 'Hello'],
  ];
  return new URLSearchParams({
    ...fixture.form_fields,
    recipient: 'support@help.example.com',
    'body-plain': opts.text,
    'stripped-text': opts.text,
    'message-headers': JSON.stringify(headers),
    ...mailgunSignature(opts.key),
  });
}
