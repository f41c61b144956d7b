/**
 * @module Web-chat settings (SPEC §2, §7). The channel is always on: with `WEBCHAT_JWT_SECRET` (HS256) or
 * `WEBCHAT_JWT_PUBLIC_KEY` (RS256 / ES256) it verifies tokens minted by the site's backend; with neither
 * it runs in demo mode and mints short-lived visitor tokens itself.
 */
import { createPublicKey, type KeyObject } from 'node:crypto';
import { z } from 'zod';
import type { AdapterConfigResult, Env } from '../../src/core/index.js';
import { UPLOAD_TYPES, type UploadType } from './sniff.js';

/** Every setting this adapter reads. */
export const SETTINGS = [
  'WEBCHAT_JWT_SECRET',
  'WEBCHAT_JWT_PUBLIC_KEY',
  'WEBCHAT_JWT_AUDIENCE',
  'WEBCHAT_JWT_ISSUER',
  'WEBCHAT_ALLOWED_ORIGINS',
  'WEBCHAT_MAX_FRAME_BYTES',
  'WEBCHAT_MAX_MSGS_PER_S',
  'WEBCHAT_MAX_SOCKETS_PER_VISITOR',
  'WEBCHAT_MAX_SOCKETS_PER_IP',
  'WEBCHAT_HEARTBEAT_S',
  'WEBCHAT_TYPING_TIMEOUT_S',
  'WEBCHAT_REPLAY_PAGE',
  'WEBCHAT_SEND_BUFFER_BYTES',
  'WEBCHAT_SLOW_SOCKET_S',
  'WEBCHAT_UPLOAD_MAX_BYTES',
  'WEBCHAT_UPLOAD_TYPES',
] as const;

/** Defaults of the tunables, each with the reason for its value. */
export const WEBCHAT_DEFAULTS = {
  /** A chat message is a few hundred bytes; 16 KiB leaves room for long pastes and bounds memory per frame. */
  WEBCHAT_MAX_FRAME_BYTES: 16_384,
  /** Frames per second per socket (token bucket, bursts up to twice this); a person types far slower. */
  WEBCHAT_MAX_MSGS_PER_S: 5,
  /** Open sockets per visitor in one process: a few tabs are normal, dozens are a loop or abuse. */
  WEBCHAT_MAX_SOCKETS_PER_VISITOR: 5,
  /**
   * Open sockets per client address in one process, counted from the upgrade (before authentication):
   * an office or a carrier NAT puts many visitors behind one address, a flood from one host is capped.
   */
  WEBCHAT_MAX_SOCKETS_PER_IP: 50,
  /** Ping interval; a socket that missed the previous pong is terminated (half-open connection). */
  WEBCHAT_HEARTBEAT_S: 30,
  /** The bot's typing indicator is cleared after this long even if no reply or error came. */
  WEBCHAT_TYPING_TIMEOUT_S: 30,
  /** Messages per `resume` page: the next page is read only once the socket has sent the last one. */
  WEBCHAT_REPLAY_PAGE: 50,
  /**
   * Back-pressure high-water mark: bytes a socket may hold unsent before a replay waits for it to drain.
   * A page of 8 KiB messages fits several times; a few hundred sockets at the mark stay far below 1 GB.
   */
  WEBCHAT_SEND_BUFFER_BYTES: 262_144,
  /** A socket that stays over the mark this long is not reading: closed with 1013 (try again later). */
  WEBCHAT_SLOW_SOCKET_S: 10,
  /**
   * Largest file a visitor may upload; 0 turns uploads off. Kept base64 in the store's key/value
   * facility like mail attachments, so the default matches WhatsApp media (5 MiB).
   */
  WEBCHAT_UPLOAD_MAX_BYTES: 5_242_880,
  /** Types a visitor may upload, as recognized from the file's first bytes (never the browser's claim). */
  WEBCHAT_UPLOAD_TYPES: 'image/png,image/jpeg,image/gif,image/webp,application/pdf,text/plain',
  /** Lifetime of the tokens the gateway mints in demo mode (CHANNELS.md §5: 5–15 minutes). */
  DEMO_TOKEN_TTL_S: 600,
  /** A socket that offered no token must send its `auth` frame within this time. */
  AUTH_TIMEOUT_MS: 5_000,
} as const;

/** How tokens are verified: a shared secret, a public key, or the gateway's own demo secret. */
export type TokenKeys =
  | { mode: 'secret'; secret: string; algorithms: ['HS256'] }
  | { mode: 'publicKey' /** PEM text. */; key: string; algorithms: ['RS256'] | ['ES256'] }
  | { mode: 'demo'; algorithms: ['HS256'] };

export interface WebChatConfig {
  keys: TokenKeys;
  audience?: string;
  issuer?: string;
  /** Normalized origins (`scheme://host[:port]`); `undefined` means PUBLIC_URL's origin plus same-host pages. */
  allowedOrigins?: string[];
  maxFrameBytes: number;
  maxMsgsPerS: number;
  maxSocketsPerVisitor: number;
  maxSocketsPerIp: number;
  heartbeatMs: number;
  typingTimeoutMs: number;
  replayPage: number;
  sendBufferBytes: number;
  slowSocketMs: number;
  /** Visitor uploads: largest size in bytes (0: off) and the allowed sniffed types. */
  upload: { maxBytes: number; types: UploadType[] };
}

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

const limitsSchema = z.object({
  WEBCHAT_MAX_FRAME_BYTES: int(1_024, 1_048_576).default(WEBCHAT_DEFAULTS.WEBCHAT_MAX_FRAME_BYTES),
  WEBCHAT_MAX_MSGS_PER_S: int(1, 1_000).default(WEBCHAT_DEFAULTS.WEBCHAT_MAX_MSGS_PER_S),
  WEBCHAT_MAX_SOCKETS_PER_VISITOR: int(1, 1_000).default(WEBCHAT_DEFAULTS.WEBCHAT_MAX_SOCKETS_PER_VISITOR),
  WEBCHAT_MAX_SOCKETS_PER_IP: int(1, 100_000).default(WEBCHAT_DEFAULTS.WEBCHAT_MAX_SOCKETS_PER_IP),
  WEBCHAT_HEARTBEAT_S: int(1, 3_600).default(WEBCHAT_DEFAULTS.WEBCHAT_HEARTBEAT_S),
  WEBCHAT_TYPING_TIMEOUT_S: int(1, 3_600).default(WEBCHAT_DEFAULTS.WEBCHAT_TYPING_TIMEOUT_S),
  WEBCHAT_REPLAY_PAGE: int(1, 1_000).default(WEBCHAT_DEFAULTS.WEBCHAT_REPLAY_PAGE),
  WEBCHAT_SEND_BUFFER_BYTES: int(16_384, 67_108_864).default(WEBCHAT_DEFAULTS.WEBCHAT_SEND_BUFFER_BYTES),
  WEBCHAT_SLOW_SOCKET_S: int(1, 3_600).default(WEBCHAT_DEFAULTS.WEBCHAT_SLOW_SOCKET_S),
  WEBCHAT_UPLOAD_MAX_BYTES: int(0, 26_214_400).default(WEBCHAT_DEFAULTS.WEBCHAT_UPLOAD_MAX_BYTES),
  WEBCHAT_UPLOAD_TYPES: z
    .string()
    .default(WEBCHAT_DEFAULTS.WEBCHAT_UPLOAD_TYPES)
    .transform((v) =>
      v
        .split(',')
        .map((t) => t.trim().toLowerCase())
        .filter(Boolean),
    )
    .pipe(
      z
        .array(
          z.enum(UPLOAD_TYPES, {
            message: `each type must be one the gateway recognizes by content: ${UPLOAD_TYPES.join(', ')}`,
          }),
        )
        .min(1),
    ),
});

/** RFC 7518 §3.2: an HS256 key must be at least as long as the hash output (256 bits). */
const MIN_SECRET_BYTES = 32;

/** Normalizes one origin; `undefined` when it is not a bare http(s) origin. */
export function normalizeOrigin(value: string): string | undefined {
  let url: URL;
  try {
    url = new URL(value.trim());
  } catch {
    return undefined;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return undefined;
  if (url.pathname !== '/' || url.search || url.hash || url.username || url.password) return undefined;
  return url.origin;
}

function readPublicKey(pem: string, errors: string[]): TokenKeys | undefined {
  // Env files often carry PEM on one line with literal "\n" escapes.
  const text = pem.includes('\\n') ? pem.replace(/\\n/g, '\n') : pem;
  if (/PRIVATE KEY/.test(text)) {
    errors.push('WEBCHAT_JWT_PUBLIC_KEY: give the public key (PEM "PUBLIC KEY"), never the private key');
    return undefined;
  }
  let key: KeyObject;
  try {
    key = createPublicKey(text);
  } catch {
    errors.push('WEBCHAT_JWT_PUBLIC_KEY: not a PEM public key');
    return undefined;
  }
  if (key.asymmetricKeyType === 'rsa') {
    if ((key.asymmetricKeyDetails?.modulusLength ?? 0) < 2048) {
      errors.push('WEBCHAT_JWT_PUBLIC_KEY: RSA keys must have at least 2048 bits');
      return undefined;
    }
    return { mode: 'publicKey', key: text, algorithms: ['RS256'] };
  }
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') {
    return { mode: 'publicKey', key: text, algorithms: ['ES256'] };
  }
  errors.push('WEBCHAT_JWT_PUBLIC_KEY: must be an RSA (RS256) or EC P-256 (ES256) public key');
  return undefined;
}

/** Reads the web-chat settings; always enabled, errors for inconsistent or invalid values. */
export function configure(env: Env): AdapterConfigResult<WebChatConfig> {
  const errors: string[] = [];
  const secret = env.WEBCHAT_JWT_SECRET;
  const publicKey = env.WEBCHAT_JWT_PUBLIC_KEY;
  let keys: TokenKeys | undefined;
  if (secret && publicKey) {
    errors.push('WEBCHAT_JWT_SECRET and WEBCHAT_JWT_PUBLIC_KEY are both set: choose HS256 or RS256/ES256');
  } else if (secret) {
    if (Buffer.byteLength(secret, 'utf8') < MIN_SECRET_BYTES) {
      errors.push(`WEBCHAT_JWT_SECRET: must be at least ${MIN_SECRET_BYTES} bytes (RFC 7518 §3.2)`);
    } else {
      keys = { mode: 'secret', secret, algorithms: ['HS256'] };
    }
  } else if (publicKey) {
    keys = readPublicKey(publicKey, errors);
  } else {
    keys = { mode: 'demo', algorithms: ['HS256'] };
  }

  let allowedOrigins: string[] | undefined;
  if (env.WEBCHAT_ALLOWED_ORIGINS !== undefined) {
    allowedOrigins = [];
    for (const raw of env.WEBCHAT_ALLOWED_ORIGINS.split(',')
      .map((o) => o.trim())
      .filter(Boolean)) {
      const origin = normalizeOrigin(raw);
      if (origin) allowedOrigins.push(origin);
      else errors.push(`WEBCHAT_ALLOWED_ORIGINS: "${raw}" is not an origin like https://shop.example.com`);
    }
  }

  const limits = limitsSchema.safeParse(env);
  if (!limits.success) {
    for (const issue of limits.error.issues) errors.push(`${issue.path.join('.')}: ${issue.message}`);
  }
  if (errors.length > 0 || !keys || !limits.success) return { enabled: false, errors };
  return {
    enabled: true,
    config: {
      keys,
      audience: env.WEBCHAT_JWT_AUDIENCE,
      issuer: env.WEBCHAT_JWT_ISSUER,
      allowedOrigins,
      maxFrameBytes: limits.data.WEBCHAT_MAX_FRAME_BYTES,
      maxMsgsPerS: limits.data.WEBCHAT_MAX_MSGS_PER_S,
      maxSocketsPerVisitor: limits.data.WEBCHAT_MAX_SOCKETS_PER_VISITOR,
      maxSocketsPerIp: limits.data.WEBCHAT_MAX_SOCKETS_PER_IP,
      heartbeatMs: limits.data.WEBCHAT_HEARTBEAT_S * 1000,
      typingTimeoutMs: limits.data.WEBCHAT_TYPING_TIMEOUT_S * 1000,
      replayPage: limits.data.WEBCHAT_REPLAY_PAGE,
      sendBufferBytes: limits.data.WEBCHAT_SEND_BUFFER_BYTES,
      slowSocketMs: limits.data.WEBCHAT_SLOW_SOCKET_S * 1000,
      upload: {
        maxBytes: limits.data.WEBCHAT_UPLOAD_MAX_BYTES,
        types: [...new Set(limits.data.WEBCHAT_UPLOAD_TYPES)],
      },
    },
  };
}
