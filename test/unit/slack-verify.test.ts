/**
 * Slack v0 request verification: Slack's published example, requests signed at run time with the
 * documented scheme, agreement with Bolt's own verifier, and every refusal reason.
 */
import { isValidSlackRequest } from '@slack/bolt';
import { describe, expect, it } from 'vitest';
import { SLACK_MAX_SKEW_S, verifySlackRequest } from '../../adapters/slack/verify.js';
import { SIGNING_SECRET, signSlack } from '../fakes/slack-api.js';

/** Slack's own example (docs "Verifying requests from Slack"): secret, timestamp, body and signature. */
const DOCUMENTED = {
  secret: '8f742231b10e8888abcd99yyyzzz85a5',
  timestamp: 1531420618,
  body: 'token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c',
  signature: 'v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503',
};

function check(body: string, headers: Record<string, string | undefined>, nowMs = Date.now()) {
  return verifySlackRequest({
    signingSecret: SIGNING_SECRET,
    rawBody: Buffer.from(body),
    signature: headers['x-slack-signature'],
    timestamp: headers['x-slack-request-timestamp'],
    nowMs,
  });
}

describe('verifySlackRequest', () => {
  it("accepts Slack's documented example within the window and refuses it outside, in both directions", () => {
    const at = (offsetS: number) =>
      verifySlackRequest({
        signingSecret: DOCUMENTED.secret,
        rawBody: Buffer.from(DOCUMENTED.body),
        signature: DOCUMENTED.signature,
        timestamp: String(DOCUMENTED.timestamp),
        nowMs: (DOCUMENTED.timestamp + offsetS) * 1000,
      });
    expect(at(60)).toEqual({ ok: true });
    expect(at(-60)).toEqual({ ok: true });
    expect(at(SLACK_MAX_SKEW_S + 1)).toEqual({ ok: false, reason: 'stale_timestamp' });
    // Bolt 5 accepts this one (CHANNELS.md §2.1); a future-dated request is refused here.
    expect(at(-(SLACK_MAX_SKEW_S + 1))).toEqual({ ok: false, reason: 'future_timestamp' });
  });

  it('agrees with Bolt on requests signed at run time, and on tampered ones', () => {
    const body = JSON.stringify({ type: 'event_callback', event: { text: 'héllo ✓', ts: `${Date.now()}` } });
    const headers = signSlack(body);
    expect(check(body, headers)).toEqual({ ok: true });
    const bolt = (b: string) =>
      isValidSlackRequest({
        signingSecret: SIGNING_SECRET,
        body: b,
        headers: {
          'x-slack-signature': headers['x-slack-signature'],
          'x-slack-request-timestamp': Number(headers['x-slack-request-timestamp']),
        },
      });
    expect(bolt(body)).toBe(true);
    const tampered = body.replace('héllo', 'hello');
    expect(check(tampered, headers)).toEqual({ ok: false, reason: 'bad_signature' });
    expect(bolt(tampered)).toBe(false);
  });

  it('verifies the raw bytes: the same JSON re-serialized does not verify', () => {
    const body = '{"type": "event_callback",  "event_id": "Ev1"}';
    const headers = signSlack(body);
    expect(check(body, headers).ok).toBe(true);
    expect(check(JSON.stringify(JSON.parse(body)), headers)).toEqual({ ok: false, reason: 'bad_signature' });
  });

  it('refuses a signature made with another secret', () => {
    const body = '{}';
    expect(check(body, signSlack(body, { secret: 'another_secret_0000000000000000' }))).toEqual({
      ok: false,
      reason: 'bad_signature',
    });
  });

  it('names the reason for missing and malformed headers', () => {
    const body = '{}';
    const good = signSlack(body);
    expect(check(body, { ...good, 'x-slack-signature': undefined })).toEqual({
      ok: false,
      reason: 'missing_signature',
    });
    expect(check(body, { ...good, 'x-slack-request-timestamp': undefined })).toEqual({
      ok: false,
      reason: 'missing_timestamp',
    });
    expect(check(body, { ...good, 'x-slack-request-timestamp': '17e8' })).toEqual({
      ok: false,
      reason: 'malformed_timestamp',
    });
    expect(
      check(body, { ...good, 'x-slack-signature': good['x-slack-signature'].replace('v0=', 'v1=') }),
    ).toEqual({
      ok: false,
      reason: 'malformed_signature',
    });
    expect(check(body, { ...good, 'x-slack-signature': `${good['x-slack-signature']}00` })).toEqual({
      ok: false,
      reason: 'malformed_signature',
    });
  });

  it('uses the injected clock for the window', () => {
    const body = '{}';
    const headers = signSlack(body, { timestampS: 1_000_000 });
    expect(check(body, headers, 1_000_000_000 + 299_000).ok).toBe(true);
    expect(check(body, headers, 1_000_000_000 + 301_000)).toEqual({ ok: false, reason: 'stale_timestamp' });
    expect(check(body, headers, 1_000_000_000 - 301_000)).toEqual({ ok: false, reason: 'future_timestamp' });
  });
});
