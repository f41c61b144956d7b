/**
 * @module Webhook checks for the WhatsApp Cloud API, pure (no I/O).
 *
 *   - `POST`: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(App Secret, raw body)>`, compared in
 *     constant time over the exact bytes received. Meta signs the body as it sends it, with non-ASCII
 *     (and `/`, `<`, `%`, `@`) as `\uXXXX` escapes, so a body parsed and serialized again no longer
 *     matches: the raw bytes are the only thing that can be hashed (CHANNELS.md §4; fixture
 *     `meta-signature-unicode-escaping.json`; Meta "Webhooks > Validating payloads",
 *     https://developers.facebook.com/docs/graph-api/webhooks/getting-started#validate-payloads).
 *   - `GET`: the subscription handshake `hub.mode=subscribe&hub.verify_token=…&hub.challenge=…`,
 *     answered with the raw challenge when the token matches (CHANNELS.md §4).
 *
 * Meta's scheme has no timestamp, so there is no freshness window; replays are caught by the dedupe
 * on the `wamid`.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

export type SignatureFailure = 'missing_signature' | 'malformed_signature' | 'bad_signature';

export type SignatureResult = { ok: true } | { ok: false; reason: SignatureFailure };

const HEADER_RE = /^sha256=([0-9a-f]{64})$/i;

/** The header value Meta would send for `body` (used by tests and fakes, and by the check below). */
export function signatureOf(appSecret: string, body: Buffer | string): string {
  return `sha256=${createHmac('sha256', appSecret).update(body).digest('hex')}`;
}

/** Checks `X-Hub-Signature-256` over the raw body bytes; never logs or returns the signature. */
export function verifySignature(
  appSecret: string,
  header: string | undefined,
  body: Buffer,
): SignatureResult {
  if (header === undefined || header === '') return { ok: false, reason: 'missing_signature' };
  const m = HEADER_RE.exec(header.trim());
  const expected = createHmac('sha256', appSecret).update(body).digest();
  // Compared even when the header is malformed, against zeros, so timing says nothing about the shape.
  const presented = m?.[1] ? Buffer.from(m[1], 'hex') : Buffer.alloc(32);
  const equal = timingSafeEqual(expected, presented);
  if (!m) return { ok: false, reason: 'malformed_signature' };
  return equal ? { ok: true } : { ok: false, reason: 'bad_signature' };
}

export type ChallengeResult =
  | { ok: true; challenge: string }
  | { ok: false; reason: 'not_subscribe' | 'missing_challenge' | 'bad_verify_token' };

/** Longest challenge echoed back; Meta's are short numbers. */
const MAX_CHALLENGE = 256;

/**
 * The `GET` handshake: the challenge to echo when `hub.mode` is `subscribe` and `hub.verify_token`
 * equals the configured token (compared as SHA-256 digests, so in constant time whatever the lengths).
 */
export function checkChallenge(
  verifyToken: string,
  query: { mode?: string; token?: string; challenge?: string },
): ChallengeResult {
  const presented = createHash('sha256')
    .update(query.token ?? '')
    .digest();
  const expected = createHash('sha256').update(verifyToken).digest();
  const tokenOk = timingSafeEqual(presented, expected) && query.token !== undefined;
  if (query.mode !== 'subscribe') return { ok: false, reason: 'not_subscribe' };
  if (!tokenOk) return { ok: false, reason: 'bad_verify_token' };
  const challenge = query.challenge ?? '';
  if (challenge === '' || challenge.length > MAX_CHALLENGE || !/^[\x21-\x7e]+$/.test(challenge)) {
    return { ok: false, reason: 'missing_challenge' };
  }
  return { ok: true, challenge };
}
