/**
 * @module WhatsApp Cloud API settings: enabled exactly when `WHATSAPP_ACCESS_TOKEN`,
 * `WHATSAPP_APP_SECRET`, `WHATSAPP_VERIFY_TOKEN` and `WHATSAPP_PHONE_NUMBER_ID` are all set; any
 * `WHATSAPP_*` setting without the others is an error that stops the start (fail closed: without the
 * app secret no webhook can be verified, without the token nothing can be sent or downloaded).
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
  'WHATSAPP_ACCESS_TOKEN',
  'WHATSAPP_APP_SECRET',
  'WHATSAPP_VERIFY_TOKEN',
  'WHATSAPP_PHONE_NUMBER_ID',
  'WHATSAPP_API_URL',
  'WHATSAPP_API_VERSION',
  'WHATSAPP_MEDIA_MAX_BYTES',
  'WHATSAPP_TYPING_INDICATOR',
  'WHATSAPP_VERIFY',
  'WHATSAPP_SEND_RATE_PER_SEC',
] as const;

const REQUIRED = [
  'WHATSAPP_ACCESS_TOKEN',
  'WHATSAPP_APP_SECRET',
  'WHATSAPP_VERIFY_TOKEN',
  'WHATSAPP_PHONE_NUMBER_ID',
] as const;

/** Meta's Graph API; tests point `WHATSAPP_API_URL` at a local fake. */
export const DEFAULT_API_URL = 'https://graph.facebook.com';

/**
 * Cloud API throughput per business phone number: 80 messages a second by default (1,000 after Meta's
 * automatic upgrade; 20 for a number shared with the WhatsApp Business app), inbound and outbound
 * together (https://developers.facebook.com/documentation/business-messaging/whatsapp/throughput).
 */
export const DEFAULT_SEND_RATE_PER_SEC = 80;

/** The Graph API version in request paths (`/v23.0/<phone-number-id>/messages`). */
export const DEFAULT_API_VERSION = 'v23.0';

/**
 * Largest inbound media file downloaded and stored. Meta's own caps are 5 MB for images, 16 MB for
 * audio and video and 100 MB for documents (Cloud API "Supported media types"); content is kept in the
 * store's key/value facility like mail attachments, so the default is kept small.
 */
export const DEFAULT_MEDIA_MAX_BYTES = 5 * 1_048_576;

export interface WhatsAppCloudConfig {
  /** A system user's permanent token (or a temporary one while testing): sends and downloads media. */
  accessToken: string;
  /** The Meta app's App Secret: the key of every webhook's `X-Hub-Signature-256`. */
  appSecret: string;
  /** What the webhook's `GET` subscription handshake must carry as `hub.verify_token`. */
  verifyToken: string;
  /** The business phone number replies go out from when a conversation does not name one. */
  phoneNumberId: string;
  /** Base URL of the Graph API, without a trailing slash. @default https://graph.facebook.com */
  apiUrl: string;
  /** @default v23.0 */
  apiVersion: string;
  /** @default 5 MiB */
  mediaMaxBytes: number;
  /**
   * Shows "typing…" while the bot works on a customer's message, which also marks that message read
   * (typing.ts). @default true
   */
  typingIndicator: boolean;
  /** `enforce` refuses a webhook whose signature does not verify; `report` accepts and logs it (SPEC §12). */
  verify: VerifyMode;
  /**
   * Messages per second per business phone number id, held over all processes; 0 = off. Meta's
   * default throughput is 80 a second per number (error 130429 above it). @default 80
   */
  sendRatePerSec: number;
}

const schema = z.object({
  // Graph API tokens are long opaque strings (about 200 characters); short ones are paste errors.
  WHATSAPP_ACCESS_TOKEN: z.string().regex(/^\S{32,2048}$/, 'must be 32 to 2048 characters without spaces'),
  // App secrets are 32 hex digits in the app console (Settings > Basic); any long secret is accepted.
  WHATSAPP_APP_SECRET: z.string().regex(/^\S{16,256}$/, 'must be 16 to 256 characters without spaces'),
  // Chosen by the operator and typed into the webhook form; it only proves the subscription request.
  WHATSAPP_VERIFY_TOKEN: z.string().regex(/^\S{8,256}$/, 'must be 8 to 256 characters without spaces'),
  // The phone number id (not the number itself) from the app's WhatsApp > API Setup page.
  WHATSAPP_PHONE_NUMBER_ID: z
    .string()
    .regex(/^\d{5,32}$/, 'must be the numeric phone number id, not the number'),
  WHATSAPP_API_URL: z
    .url()
    .refine((v) => /^https?:\/\//.test(v), 'must be an http(s) URL')
    .refine((v) => !v.includes('?') && !v.includes('#'), 'must not have a query or fragment')
    .default(DEFAULT_API_URL),
  WHATSAPP_API_VERSION: z
    .string()
    .regex(/^v\d+\.\d+$/, 'must look like v23.0')
    .default(DEFAULT_API_VERSION),
  WHATSAPP_MEDIA_MAX_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .max(100 * 1_048_576)
    .default(DEFAULT_MEDIA_MAX_BYTES),
  WHATSAPP_TYPING_INDICATOR: z.enum(['on', 'off'], { message: 'must be on or off' }).default('on'),
  WHATSAPP_VERIFY: verifyModeSchema,
  WHATSAPP_SEND_RATE_PER_SEC: z.coerce
    .number({ message: 'must be a number' })
    .min(0, 'must be 0 (off) or more')
    .max(10_000)
    .default(DEFAULT_SEND_RATE_PER_SEC),
});

/** Reads the WhatsApp Cloud API settings; see the module comment for when it is enabled. */
export function configure(env: Env): AdapterConfigResult<WhatsAppCloudConfig> {
  const present = SETTINGS.filter((name) => env[name] !== undefined && env[name] !== '');
  if (present.length === 0) return { enabled: false };
  const missing = REQUIRED.filter((name) => !present.includes(name));
  if (missing.length > 0) {
    const given = present.join(' and ');
    return {
      enabled: false,
      errors: missing.map(
        (name) => `${name}: required when ${given} ${present.length > 1 ? 'are' : 'is'} set`,
      ),
    };
  }
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    return { enabled: false, errors: parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`) };
  }
  const d = parsed.data;
  return {
    enabled: true,
    config: {
      accessToken: d.WHATSAPP_ACCESS_TOKEN,
      appSecret: d.WHATSAPP_APP_SECRET,
      verifyToken: d.WHATSAPP_VERIFY_TOKEN,
      phoneNumberId: d.WHATSAPP_PHONE_NUMBER_ID,
      apiUrl: d.WHATSAPP_API_URL.replace(/\/+$/, ''),
      apiVersion: d.WHATSAPP_API_VERSION,
      mediaMaxBytes: d.WHATSAPP_MEDIA_MAX_BYTES,
      typingIndicator: d.WHATSAPP_TYPING_INDICATOR === 'on',
      verify: d.WHATSAPP_VERIFY,
      sendRatePerSec: d.WHATSAPP_SEND_RATE_PER_SEC,
    },
  };
}
