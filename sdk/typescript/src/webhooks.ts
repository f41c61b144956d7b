/**
 * @module Verification of the gateway's outbound webhooks: Standard Webhooks v1, the symmetric `v1`
 * scheme. The gateway signs `{webhook-id}.{webhook-timestamp}.{raw body}` with HMAC-SHA256, the key
 * being the base64-decoded part of the `whsec_...` secret, and sends `v1,<base64>` in
 * `webhook-signature`. During a secret rotation the header holds several space-separated entries
 * (new and old secret); one match is enough. Uses WebCrypto only (Node 20+, Deno, Bun, workers);
 * `crypto.subtle.verify` compares in constant time.
 */
import type { components } from './generated/openapi.js';

const SECRET_PREFIX = 'whsec_';
const encoder = new TextEncoder();

/** The event types a subscription can name, plus `ping` (sent on request). */
export type WebhookEventType = components['schemas']['createWebhookRequest']['events'][number] | 'ping';

/** The JSON body of one delivery (docs/webhooks.md). */
export interface WebhookEvent {
  /** `evt_…`; also the `webhook-id` header, the same for every attempt and replay. */
  id: string;
  type: WebhookEventType;
  version: number;
  createdAt: string;
  conversationId: string | null;
  seq: number;
  data: {
    conversation?: components['schemas']['Conversation'];
    message?: components['schemas']['Message'];
    participant?: components['schemas']['Participant'];
    [key: string]: unknown;
  };
}

/** The request is not a genuine, fresh delivery of this subscription: answer it 4xx. */
export class WebhookVerificationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WebhookVerificationError';
  }
}

/** Request headers as frameworks hand them over: a `Headers`, or a plain (Node) header object. */
export type HeadersLike = Headers | Readonly<Record<string, string | readonly string[] | undefined>>;
/** The raw body as received. */
export type BodyLike = string | Uint8Array | ArrayBuffer;

function header(headers: HeadersLike, name: string): string {
  let value: string | readonly string[] | null | undefined;
  if (typeof (headers as Headers).get === 'function') value = (headers as Headers).get(name);
  else {
    const record = headers as Readonly<Record<string, string | readonly string[] | undefined>>;
    value = record[name];
    // Header names are case-insensitive; plain objects may keep any case.
    if (value === undefined) {
      for (const [k, v] of Object.entries(record)) if (k.toLowerCase() === name) value = v;
    }
  }
  const text = Array.isArray(value) ? value.join(' ') : (value as string | null | undefined);
  if (!text) throw new WebhookVerificationError(`Missing ${name} header`);
  return text;
}

function fromBase64(text: string): Uint8Array<ArrayBuffer> | undefined {
  if (text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) return undefined;
  const bin = atob(text);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return bytes;
}

function toBase64(bytes: Uint8Array): string {
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return btoa(bin);
}

function bodyBytes(body: BodyLike): Uint8Array<ArrayBuffer> {
  if (typeof body === 'string') return encoder.encode(body);
  // A copy: the caller's view may sit on a shared or larger buffer.
  return body instanceof Uint8Array ? new Uint8Array(body) : new Uint8Array(body.slice(0));
}

function secretKey(secret: string): Uint8Array<ArrayBuffer> {
  const raw = secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret;
  const key = fromBase64(raw);
  if (!key || key.length === 0) throw new TypeError('The secret is not whsec_ followed by base64');
  return key;
}

type HmacKey = Awaited<ReturnType<typeof crypto.subtle.importKey>>;

async function hmacKey(secret: string, usage: 'sign' | 'verify'): Promise<HmacKey> {
  return crypto.subtle.importKey('raw', secretKey(secret), { name: 'HMAC', hash: 'SHA-256' }, false, [usage]);
}

function signedContent(id: string, timestamp: number | string, body: Uint8Array): Uint8Array<ArrayBuffer> {
  const head = encoder.encode(`${id}.${timestamp}.`);
  const content = new Uint8Array(head.length + body.length);
  content.set(head);
  content.set(body, head.length);
  return content;
}

/** The `v1,<base64>` signature of one delivery, as the gateway sends it (handy for tests). */
export async function signWebhook(opts: {
  secret: string;
  id: string;
  timestamp: number;
  body: BodyLike;
}): Promise<string> {
  const key = await hmacKey(opts.secret, 'sign');
  const mac = await crypto.subtle.sign(
    'HMAC',
    key,
    signedContent(opts.id, opts.timestamp, bodyBytes(opts.body)),
  );
  return `v1,${toBase64(new Uint8Array(mac))}`;
}

export interface VerifyWebhookOptions {
  /** The subscription's `whsec_...` secret; several while rotating (any one may match). */
  secret: string | readonly string[];
  headers: HeadersLike;
  /** The raw body as received: re-serialised JSON does not verify. */
  body: BodyLike;
  /** Seconds the `webhook-timestamp` may be away from now, either way (default 300). */
  toleranceS?: number;
  /** Now, in unix seconds (default the clock). */
  now?: number;
}

/**
 * Checks one delivery and resolves with its parsed event. Rejects with `WebhookVerificationError`
 * when a header is missing, the timestamp is more than `toleranceS` seconds away from now, or no `v1`
 * entry of `webhook-signature` matches; with `TypeError` when a secret is malformed.
 */
export async function verifyWebhook<T = WebhookEvent>(opts: VerifyWebhookOptions): Promise<T> {
  const id = header(opts.headers, 'webhook-id');
  const tsText = header(opts.headers, 'webhook-timestamp');
  const signatures = header(opts.headers, 'webhook-signature');
  const secrets = typeof opts.secret === 'string' ? [opts.secret] : [...opts.secret];
  if (secrets.length === 0) throw new TypeError('Expected at least one secret');
  const keys = await Promise.all(secrets.map((s) => hmacKey(s, 'verify')));
  if (!/^\d+$/.test(tsText)) throw new WebhookVerificationError('Invalid webhook-timestamp header');
  const timestamp = Number(tsText);
  const now = opts.now ?? Math.floor(Date.now() / 1000);
  const tolerance = opts.toleranceS ?? 300;
  if (timestamp < now - tolerance) throw new WebhookVerificationError('Message timestamp too old');
  if (timestamp > now + tolerance) throw new WebhookVerificationError('Message timestamp too new');
  const body = bodyBytes(opts.body);
  const content = signedContent(id, tsText, body);
  let matched = false;
  for (const entry of signatures.split(' ')) {
    const comma = entry.indexOf(',');
    if (comma < 0 || entry.slice(0, comma) !== 'v1') continue;
    const mac = fromBase64(entry.slice(comma + 1));
    if (mac?.length !== 32) continue;
    // Every entry is checked against every key, so where a match sits leaks nothing.
    for (const key of keys) if (await crypto.subtle.verify('HMAC', key, mac, content)) matched = true;
  }
  if (!matched) throw new WebhookVerificationError('No matching signature found');
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body)) as T;
  } catch {
    throw new WebhookVerificationError('The verified body is not JSON');
  }
}
