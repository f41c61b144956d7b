/**
 * @module Standard Webhooks signing (https://github.com/standard-webhooks/standard-webhooks, spec
 * v1.0.0): HMAC-SHA256 over `{webhook-id}.{webhook-timestamp}.{body}` with the base64-decoded `whsec_`
 * secret, sent as `v1,<base64>`. The signature header is a space-separated list so a secret can be
 * rotated without downtime: during the grace period both the new and the old secret sign.
 */
import { randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';

/** Random bytes in a generated secret; the spec allows 24–64. */
const SECRET_BYTES = 32;

/** A new signing secret: `whsec_` + base64 of 32 random bytes. */
export function generateSecret(): string {
  return `whsec_${randomBytes(SECRET_BYTES).toString('base64')}`;
}

/** The three Standard Webhooks headers of one attempt. */
export interface SignatureHeaders {
  'webhook-id': string;
  'webhook-timestamp': string;
  'webhook-signature': string;
}

/**
 * Signs one attempt. `secrets` are the secrets currently valid, newest first; each adds one entry to
 * `webhook-signature`.
 * @throws TypeError when `secrets` is empty.
 */
export function signatureHeaders(
  msgId: string,
  body: string,
  secrets: readonly string[],
  now = new Date(),
): SignatureHeaders {
  if (secrets.length === 0) throw new TypeError('Expected `secrets` to hold at least one secret');
  // The library signs with millisecond precision dropped, matching the header's unix seconds.
  const timestamp = new Date(Math.floor(now.getTime() / 1000) * 1000);
  return {
    'webhook-id': msgId,
    'webhook-timestamp': String(timestamp.getTime() / 1000),
    'webhook-signature': secrets.map((s) => new Webhook(s).sign(msgId, timestamp, body)).join(' '),
  };
}
