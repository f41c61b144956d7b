/**
 * @module Pure checks for the email channel: the Mailgun route signature (HMAC of timestamp and token,
 * with a freshness window and an injectable clock), which recipients the SMTP listener accepts, reply
 * tokens in `+tag` addresses, and the API key check of the attachment download route.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import type { AcceptRule } from './config.js';

/**
 * How far a Mailgun `timestamp` may be from now, either way. Mailgun signs every post afresh, so a
 * genuine post is seconds old; 5 minutes allows clock skew (the same window Slack and Stripe use).
 */
export const MAILGUN_WINDOW_S = 300;

export type MailgunCheck =
  | { ok: true; token: string }
  | { ok: false; reason: 'missing_signature' | 'bad_signature' | 'stale_timestamp' };

/**
 * Verifies the signature fields of a Mailgun route post: `signature` must be
 * `hex(HMAC-SHA256(signingKey, timestamp + token))`, compared in constant time, and `timestamp` must
 * be within {@link MAILGUN_WINDOW_S} of `nowS`. Replay protection (a token accepted once) needs
 * storage and is done by the caller with the returned token.
 * Source: https://documentation.mailgun.com/docs/mailgun/user-manual/webhooks/securing-webhooks
 */
export function verifyMailgunSignature(
  fields: { timestamp?: string | null; token?: string | null; signature?: string | null },
  signingKey: string,
  nowS: number = Math.floor(Date.now() / 1000),
): MailgunCheck {
  const { timestamp, token, signature } = fields;
  if (!timestamp || !token || !signature || !/^\d{1,12}$/.test(timestamp) || token.length > 256) {
    return { ok: false, reason: 'missing_signature' };
  }
  const expected = createHmac('sha256', signingKey)
    .update(timestamp + token)
    .digest();
  const wellFormed = /^[0-9a-f]{64}$/i.test(signature);
  // Always compare (even a malformed signature), so the time taken does not reveal which check failed.
  const equal = timingSafeEqual(expected, wellFormed ? Buffer.from(signature, 'hex') : Buffer.alloc(32));
  if (!wellFormed || !equal) return { ok: false, reason: 'bad_signature' };
  if (Math.abs(nowS - Number(timestamp)) > MAILGUN_WINDOW_S) return { ok: false, reason: 'stale_timestamp' };
  return { ok: true, token };
}

/** Splits an address into lower-cased local part and domain; null when it has no `@`. */
function split(address: string): { local: string; domain: string } | null {
  const at = address.lastIndexOf('@');
  if (at <= 0 || at === address.length - 1) return null;
  return { local: address.slice(0, at).toLowerCase(), domain: address.slice(at + 1).toLowerCase() };
}

/**
 * True when `address` is one the gateway receives mail for: a configured mailbox or one of its
 * `mailbox+tag` variants (RFC 5233 subaddressing), or any mailbox of a configured domain.
 */
export function isAcceptedRecipient(address: string, rules: readonly AcceptRule[]): boolean {
  const parts = split(address);
  if (!parts) return false;
  const base = parts.local.split('+', 1)[0];
  return rules.some((r) => r.domain === parts.domain && (r.kind === 'domain' || r.local === base));
}

/** Reply tokens are random lower-case base-32 strings; anything else in a `+tag` is not one. */
const TOKEN_RE = /^[a-z2-7]{16}$/;

/** The reply token carried in an accepted `mailbox+token@domain` address, if any. */
export function replyTokenOf(address: string, rules: readonly AcceptRule[]): string | null {
  if (!isAcceptedRecipient(address, rules)) return null;
  const local = split(address)!.local;
  const plus = local.indexOf('+');
  if (plus < 0) return null;
  const tag = local.slice(plus + 1);
  return TOKEN_RE.test(tag) ? tag : null;
}

/** True when `token` has the shape of a reply token (cheap check before a storage lookup). */
export function isReplyToken(token: string): boolean {
  return TOKEN_RE.test(token);
}

/** The local part of the bounce (VERP) address: `bounces+<token>@<EMAIL_FROM's domain>`. */
export const BOUNCE_LOCAL = 'bounces';
const BASE32 = 'abcdefghijklmnopqrstuvwxyz234567';
/** `msg_<ULID>` lower-cased, `-`, then 16 base-32 characters (80 bits) of HMAC. */
const BOUNCE_TOKEN_RE = /^(msg_[0-9a-z]{26})-([a-z2-7]{16})$/;

function bounceMac(messageId: string, secret: string): string {
  const mac = createHmac('sha256', secret).update(`email-bounce\n${messageId}`).digest();
  let out = '';
  for (let i = 0; i < 16; i++) out += BASE32[mac[i]! & 31];
  return out;
}

/**
 * The VERP envelope sender of our message `messageId` (`msg_…`): a DSN comes back to it (RFC 3464 §2,
 * RFC 5321 §4.5.5), and the HMAC proves the address was made here for that message, without a lookup.
 * Lower case only, as some MTAs fold the case of local parts.
 */
export function bounceAddress(messageId: string, secret: string, domain: string): string {
  const id = messageId.toLowerCase();
  return `${BOUNCE_LOCAL}+${id}-${bounceMac(messageId, secret)}@${domain}`;
}

/** True for `bounces@domain` and its `+tag` variants (valid token or not). */
export function isBounceAddress(address: string, domain: string): boolean {
  const parts = split(address);
  return parts !== null && parts.domain === domain && parts.local.split('+', 1)[0] === BOUNCE_LOCAL;
}

/**
 * The message id (`msg_…`) a bounce address was made for, or null when it is not a bounce address of
 * `domain` or its token does not verify (compared in constant time).
 */
export function bouncedMessageId(address: string, secret: string, domain: string): string | null {
  if (!isBounceAddress(address, domain)) return null;
  const local = split(address)!.local;
  const m = BOUNCE_TOKEN_RE.exec(local.slice(BOUNCE_LOCAL.length + 1));
  if (!m) return null;
  // ULIDs are upper case; the address carries them lower-cased.
  const messageId = `msg_${m[1]!.slice(4).toUpperCase()}`;
  const equal = timingSafeEqual(Buffer.from(bounceMac(messageId, secret)), Buffer.from(m[2]!));
  return equal ? messageId : null;
}
