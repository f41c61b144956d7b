/**
 * @module Twilio settings (SPEC §2): enabled exactly when `TWILIO_ACCOUNT_SID` and `TWILIO_AUTH_TOKEN`
 * are both set; any Twilio setting without the other two is an error that stops the start (fail closed:
 * without the auth token no webhook can be verified).
 */
import { z } from 'zod';
import {
  type AdapterConfigResult,
  type Env,
  type VerifyMode,
  verifyModeSchema,
} from '../../src/core/index.js';

/** The settings this adapter reads. */
export const SETTINGS = [
  'TWILIO_ACCOUNT_SID',
  'TWILIO_AUTH_TOKEN',
  'TWILIO_API_URL',
  'TWILIO_VERIFY',
  'TWILIO_TYPING_INDICATOR',
  'TWILIO_SEND_RATE_PER_SEC',
] as const;

/** Twilio's REST API; tests point `TWILIO_API_URL` at a local fake. */
export const DEFAULT_API_URL = 'https://api.twilio.com';

export interface TwilioConfig {
  accountSid: string;
  authToken: string;
  /** Base URL of the REST API, without a trailing slash. @default https://api.twilio.com */
  apiUrl: string;
  /** `enforce` refuses a webhook whose signature does not verify; `report` accepts and logs it (SPEC §12). */
  verify: VerifyMode;
  /**
   * Shows WhatsApp customers "typing…" while the bot works on their message (typing.ts), which also
   * marks that message read. @default true
   */
  typingIndicator: boolean;
  /**
   * Messages per second per sender (`From`), held over all processes; 0 = off (the default): Twilio
   * queues what a sender sends faster than its own rate and delivers it at that rate (README).
   */
  sendRatePerSec: number;
}

const schema = z.object({
  // twilio-node refuses any other shape ("accountSid must start with AC"); checking here reports it at start.
  TWILIO_ACCOUNT_SID: z.string().regex(/^AC[0-9a-fA-F]{32}$/, 'must be "AC" followed by 32 hex digits'),
  // Real tokens are 32 hex digits; anything without whitespace and long enough to be a secret is accepted.
  TWILIO_AUTH_TOKEN: z.string().regex(/^\S{16,256}$/, 'must be 16 to 256 characters without spaces'),
  TWILIO_API_URL: z
    .url()
    .refine((v) => /^https?:\/\//.test(v), 'must be an http(s) URL')
    .refine((v) => !v.includes('?') && !v.includes('#'), 'must not have a query or fragment')
    .default(DEFAULT_API_URL),
  TWILIO_VERIFY: verifyModeSchema,
  TWILIO_TYPING_INDICATOR: z.enum(['on', 'off']).default('on'),
  TWILIO_SEND_RATE_PER_SEC: z.coerce
    .number({ message: 'must be a number' })
    .min(0, 'must be 0 (off) or more')
    .max(10_000)
    .default(0),
});

/** Reads the Twilio settings; see the module comment for when it is enabled. */
export function configure(env: Env): AdapterConfigResult<TwilioConfig> {
  const present = SETTINGS.filter((name) => env[name] !== undefined && env[name] !== '');
  if (present.length === 0) return { enabled: false };
  const errors: string[] = [];
  for (const name of ['TWILIO_ACCOUNT_SID', 'TWILIO_AUTH_TOKEN'] as const) {
    if (!present.includes(name)) {
      errors.push(`${name}: required when ${present.join(' and ')} ${present.length > 1 ? 'are' : 'is'} set`);
    }
  }
  if (errors.length > 0) return { enabled: false, errors };
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    return { enabled: false, errors: parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`) };
  }
  return {
    enabled: true,
    config: {
      accountSid: parsed.data.TWILIO_ACCOUNT_SID,
      authToken: parsed.data.TWILIO_AUTH_TOKEN,
      apiUrl: parsed.data.TWILIO_API_URL.replace(/\/+$/, ''),
      verify: parsed.data.TWILIO_VERIFY,
      typingIndicator: parsed.data.TWILIO_TYPING_INDICATOR === 'on',
      sendRatePerSec: parsed.data.TWILIO_SEND_RATE_PER_SEC,
    },
  };
}
