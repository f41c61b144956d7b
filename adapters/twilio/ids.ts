/**
 * @module Twilio's identifiers, checked on every verified webhook. Twilio's signature concatenates
 * names and values without a separator, so the same signed bytes can be re-split into other
 * parameters (`MessageSid=<sid>NumMedia0` without `NumMedia`): the signature still verifies, and the
 * changed `MessageSid` would pass the dedupe as a new message. A SID of exactly the documented shape
 * cannot absorb its neighbour, and an `AccountSid` equal to ours ties the request to this account.
 *
 * Shapes (CHANNELS.md §1.5–1.6, Twilio's "SID" glossary): two letters naming the resource, then 32
 * lowercase hex digits. Messages are `SM` (SMS) or `MM` (MMS, WhatsApp media), accounts `AC`,
 * Messaging Services `MG`.
 */
import type { Params } from './verify.js';

const MESSAGE_SID = /^(SM|MM)[0-9a-f]{32}$/;
const ACCOUNT_SID = /^AC[0-9a-f]{32}$/;
const SERVICE_SID = /^MG[0-9a-f]{32}$/;

/** The SID parameters Twilio sends and the shape each must have when present. */
const SID_PARAMS: ReadonlyArray<readonly [string, RegExp]> = [
  ['MessageSid', MESSAGE_SID],
  ['SmsSid', MESSAGE_SID],
  ['SmsMessageSid', MESSAGE_SID],
  ['AccountSid', ACCOUNT_SID],
  ['MessagingServiceSid', SERVICE_SID],
  ['OriginalRepliedMessageSid', MESSAGE_SID],
];

/** The message SID and its legacy duplicates: when several are present they name one message. */
const MESSAGE_SID_PARAMS = ['MessageSid', 'SmsSid', 'SmsMessageSid'] as const;

export type IdRefusal =
  /** A SID parameter of the wrong shape, or given twice: 400. */
  | { status: 400; reason: 'malformed_sid'; detail: string }
  /** `AccountSid` missing or another account's: 403. */
  | { status: 403; reason: 'account_mismatch'; detail: string };

/**
 * Checks the SIDs of a verified webhook's parameters against the documented shapes and `accountSid`
 * (the configured `TWILIO_ACCOUNT_SID`); the refusal, or undefined when they are in order. Values are
 * never quoted in the detail: it goes back to whoever sent the request.
 */
export function checkIds(params: Params, accountSid: string): IdRefusal | undefined {
  for (const [name, shape] of SID_PARAMS) {
    const value = params[name];
    if (value === undefined || value === '') continue;
    if (typeof value !== 'string' || !shape.test(value)) {
      return {
        status: 400,
        reason: 'malformed_sid',
        detail: `Bad request: ${name} is not a Twilio ${name === 'AccountSid' ? 'account' : 'message'} SID (${shape.source})`,
      };
    }
  }
  const sids = new Set(
    MESSAGE_SID_PARAMS.map((name) => params[name]).filter((v) => v !== undefined && v !== ''),
  );
  if (sids.size > 1) {
    return {
      status: 400,
      reason: 'malformed_sid',
      detail: 'Bad request: MessageSid, SmsSid and SmsMessageSid differ',
    };
  }
  // Configured SIDs may be typed with upper-case hex; Twilio sends lower case.
  const ours = `AC${accountSid.slice(2).toLowerCase()}`;
  if (params.AccountSid !== ours) {
    return {
      status: 403,
      reason: 'account_mismatch',
      detail: params.AccountSid
        ? 'The AccountSid is not the one configured in TWILIO_ACCOUNT_SID'
        : 'The request carries no AccountSid',
    };
  }
  return undefined;
}
