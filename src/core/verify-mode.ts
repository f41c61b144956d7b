/**
 * @module Verification rollout (SPEC §12): `<CHANNEL>_VERIFY=enforce|report` for the provider
 * webhooks (`TWILIO_`, `SLACK_`, `MAILGUN_`). `enforce` (the default) refuses a request whose signature
 * does not verify. `report` accepts it, so a signature problem (a wrong `PUBLIC_URL`, a rotated
 * secret) can be found in production without dropping customers' messages while it is fixed: each such
 * request is logged at warn with its reason and counted with `mode="report"`. A request accepted this
 * way is never trusted for identity: whatever it says about its sender is treated as unverified, so it
 * cannot link contacts (SPEC §9).
 *
 * Report mode is never silent: it is set per channel (there is no global switch), it warns at
 * start-up, and `/metrics` shows it as `switchboard_verification_mode{channel, mode}`.
 */
import { z } from 'zod';
import type { SenderIdentity } from './channel.js';

export const VERIFY_MODES = ['enforce', 'report'] as const;
export type VerifyMode = (typeof VERIFY_MODES)[number];

/** The schema of one `<CHANNEL>_VERIFY` setting. */
export const verifyModeSchema = z.enum(VERIFY_MODES).default('enforce');

/** The sender identity of a request accepted in report mode: kept, but never as verified. */
export function untrusted(identity: SenderIdentity | undefined): SenderIdentity | undefined {
  if (!identity) return undefined;
  const { also, ...rest } = identity;
  return {
    ...rest,
    verified: false,
    ...(also ? { also: also.map((fact) => ({ ...fact, verified: false })) } : {}),
  };
}
