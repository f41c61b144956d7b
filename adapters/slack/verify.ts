/**
 * @module Slack request verification, v0 scheme: `v0=` + hex(HMAC-SHA256(signing secret,
 * `v0:{X-Slack-Request-Timestamp}:{raw body}`)), compared in constant time
 * (https://docs.slack.dev/authentication/verifying-requests-from-slack). Pure; the clock is injectable.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Largest accepted distance between the request timestamp and now, in either direction. Slack
 * documents five minutes against replays; Bolt only refuses old timestamps, but a future-dated request
 * is just as replayable once its time comes, so both directions are refused here.
 */
export const SLACK_MAX_SKEW_S = 300;

/** Why a request was refused; used as the log reason and the metrics label. */
export type SlackVerifyFailure =
  | 'missing_signature'
  | 'missing_timestamp'
  | 'malformed_timestamp'
  | 'malformed_signature'
  | 'stale_timestamp'
  | 'future_timestamp'
  | 'bad_signature';

export interface SlackVerifyInput {
  signingSecret: string;
  /** The exact bytes Slack sent: re-serialized JSON or re-encoded forms do not verify. */
  rawBody: Buffer;
  /** `X-Slack-Signature` header value. */
  signature: string | undefined;
  /** `X-Slack-Request-Timestamp` header value (unix seconds). */
  timestamp: string | undefined;
  /** Current time in ms; defaults to `Date.now()`. */
  nowMs?: number;
}

export type SlackVerifyResult = { ok: true } | { ok: false; reason: SlackVerifyFailure };

const SIGNATURE_RE = /^v0=[0-9a-f]{64}$/;

/** Checks a Slack request's v0 signature and timestamp window without throwing. */
export function verifySlackRequest(input: SlackVerifyInput): SlackVerifyResult {
  const { signature, timestamp } = input;
  if (!signature) return { ok: false, reason: 'missing_signature' };
  if (!timestamp) return { ok: false, reason: 'missing_timestamp' };
  if (!/^\d{1,12}$/.test(timestamp)) return { ok: false, reason: 'malformed_timestamp' };
  if (!SIGNATURE_RE.test(signature)) return { ok: false, reason: 'malformed_signature' };
  const skew = Math.floor((input.nowMs ?? Date.now()) / 1000) - Number(timestamp);
  if (skew > SLACK_MAX_SKEW_S) return { ok: false, reason: 'stale_timestamp' };
  if (skew < -SLACK_MAX_SKEW_S) return { ok: false, reason: 'future_timestamp' };
  const expected = createHmac('sha256', input.signingSecret)
    .update(`v0:${timestamp}:`)
    .update(input.rawBody)
    .digest('hex');
  // Both sides are `v0=` + 64 hex characters here, so the lengths match and the compare is constant-time.
  const same = timingSafeEqual(Buffer.from(`v0=${expected}`), Buffer.from(signature));
  return same ? { ok: true } : { ok: false, reason: 'bad_signature' };
}
