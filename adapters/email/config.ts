/**
 * @module Email settings (SPEC §2). The channel is enabled when `EMAIL_FROM` and `SMTP_URL` are set
 * (answers need an outbound path) together with at least one inbound path: the built-in SMTP listener
 * (`EMAIL_SMTP_PORT`) or the Mailgun route webhook (`MAILGUN_SIGNING_KEY`), and `EMAIL_BOUNCE_SECRET`
 * (the key of the VERP bounce addresses). Any email setting without that complete set is an error
 * that stops the start (fail closed). docs/email-authentication.md describes the sender checks.
 */
import { accessSync, constants } from 'node:fs';
import { z } from 'zod';
import {
  type AdapterConfigResult,
  type Env,
  type VerifyMode,
  verifyModeSchema,
} from '../../src/core/index.js';
import type { DnsResolver } from './auth.js';

/** The settings this adapter reads. */
export const SETTINGS = [
  'EMAIL_FROM',
  'SMTP_URL',
  'EMAIL_SMTP_PORT',
  'EMAIL_SMTP_HOST',
  'EMAIL_ACCEPT',
  'EMAIL_MAX_BYTES',
  'EMAIL_TLS_KEY',
  'EMAIL_TLS_CERT',
  'MAILGUN_SIGNING_KEY',
  'MAILGUN_VERIFY',
  'EMAIL_BOUNCE_SECRET',
  'EMAIL_TRUSTED_AUTHSERV_ID',
] as const;

/** @default 10 MiB: the common provider limit for a whole message (Gmail allows 25 MB, many MXs 10 MB). */
export const DEFAULT_MAX_BYTES = 10 * 1_048_576;
/** @default all interfaces, as an MX must be reachable from outside. */
export const DEFAULT_SMTP_HOST = '0.0.0.0';

/** An address split into its parts; `local` and `domain` are lower-cased for comparisons. */
export interface MailAddress {
  address: string;
  local: string;
  domain: string;
  name?: string;
}

/** What inbound mail is addressed to: one mailbox (with its `+tag` variants) or a whole domain. */
export type AcceptRule =
  | { kind: 'address'; local: string; domain: string }
  | { kind: 'domain'; domain: string };

export interface EmailConfig {
  /** Sender of every answer; its address is also the default accepted mailbox. */
  from: MailAddress;
  /** `smtp://user:pass@host:port` or `smtps://…`; holds a password, never logged. */
  smtpUrl: string;
  /** The built-in SMTP listener, when `EMAIL_SMTP_PORT` is set. */
  listener: { port: number; host: string; tls?: { keyPath: string; certPath: string } } | null;
  /** Recipients accepted inbound. @default `EMAIL_FROM`'s address and its `+tag` variants */
  accept: AcceptRule[];
  /** Largest message accepted (SMTP `SIZE`, and the Mailgun post body). @default 10 MiB */
  maxBytes: number;
  /** Mailgun "HTTP webhook signing key", when the Mailgun route is enabled. */
  mailgunSigningKey: string | null;
  /** `enforce` refuses a Mailgun post whose signature does not verify; `report` accepts and logs it (SPEC §12). */
  mailgunVerify: VerifyMode;
  /** HMAC key of the bounce (VERP) addresses of our answers; never logged. */
  bounceSecret: string;
  /**
   * The authserv-id of the upstream MTA whose `Authentication-Results` the SMTP listener trusts instead
   * of checking SPF/DKIM/DMARC itself (the top-most such header only); null: the listener checks itself.
   * Not used by the Mailgun route, which is judged by Mailgun's own results.
   */
  trustedAuthservId: string | null;
  /** DNS lookups of the sender checks. @default the system resolver (tests give their own records) */
  resolver?: DnsResolver;
}

const ADDRESS_RE =
  /^([^\s@<>"(),;:]+)@([A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+)$/;
const DOMAIN_RE =
  /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$/;

/** Splits `user@example.com`; null when it is not a plain address. */
export function parseAddress(value: string, name?: string): MailAddress | null {
  const m = ADDRESS_RE.exec(value.trim());
  if (!m) return null;
  return {
    address: `${m[1]}@${m[2]!.toLowerCase()}`,
    local: m[1]!.toLowerCase(),
    domain: m[2]!.toLowerCase(),
    ...(name ? { name } : {}),
  };
}

/** Parses `EMAIL_FROM`: `support@example.com` or `Example Support <support@example.com>`. */
export function parseFrom(value: string): MailAddress | null {
  if (/[\r\n]/.test(value)) return null;
  const named = /^\s*"?([^"<>]*?)"?\s*<([^<>]+)>\s*$/.exec(value);
  if (named) return parseAddress(named[2]!, named[1]!.trim() || undefined);
  return parseAddress(value);
}

/** Parses `EMAIL_ACCEPT`: comma-separated `mailbox@domain` (plus its `+tag` variants) or `@domain`. */
export function parseAccept(value: string): { rules: AcceptRule[]; errors: string[] } {
  const rules: AcceptRule[] = [];
  const errors: string[] = [];
  for (const entry of value
    .split(',')
    .map((e) => e.trim())
    .filter(Boolean)) {
    if (entry.startsWith('@') && DOMAIN_RE.test(entry.slice(1))) {
      rules.push({ kind: 'domain', domain: entry.slice(1).toLowerCase() });
      continue;
    }
    const a = parseAddress(entry);
    if (a) rules.push({ kind: 'address', local: a.local, domain: a.domain });
    else errors.push(`EMAIL_ACCEPT: "${entry}" is neither an address nor "@domain"`);
  }
  if (rules.length === 0 && errors.length === 0) errors.push('EMAIL_ACCEPT: lists no address or domain');
  return { rules, errors };
}

/** The URL without its password, for the start-up log. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparseable SMTP_URL)';
  }
}

const schema = z.object({
  SMTP_URL: z
    .string()
    .refine(
      (v) => /^smtps?:\/\/[^/?#]+/i.test(v) && URL.canParse(v),
      'must be smtp://[user:pass@]host[:port] or smtps://…',
    ),
  EMAIL_SMTP_PORT: z.coerce.number().int().min(0).max(65_535).optional(),
  EMAIL_SMTP_HOST: z.string().min(1).default(DEFAULT_SMTP_HOST),
  EMAIL_MAX_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .max(50 * 1_048_576)
    .default(DEFAULT_MAX_BYTES),
  // Mailgun signing keys are long random strings; anything shorter is a paste error.
  MAILGUN_SIGNING_KEY: z
    .string()
    .regex(/^\S{16,256}$/, 'must be 16 to 256 characters without spaces')
    .optional(),
  MAILGUN_VERIFY: verifyModeSchema,
  // Signs every bounce address; as long as a signing key, so it cannot be guessed.
  EMAIL_BOUNCE_SECRET: z
    .string()
    .regex(/^\S{32,256}$/, 'must be 32 to 256 characters without spaces')
    .optional(),
  EMAIL_TRUSTED_AUTHSERV_ID: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/, 'must be a host name such as mx.example.com')
    .optional(),
});

function readable(path: string): boolean {
  try {
    accessSync(path, constants.R_OK);
    return true;
  } catch {
    return false;
  }
}

/** Reads the email settings; see the module comment for when the channel is enabled. */
export function configure(env: Env): AdapterConfigResult<EmailConfig> {
  const present = SETTINGS.filter((name) => env[name] !== undefined && env[name] !== '');
  if (present.length === 0) return { enabled: false };
  const errors: string[] = [];
  const others = (name: string) => present.filter((p) => p !== name).join(', ') || 'an email setting';
  for (const name of ['EMAIL_FROM', 'SMTP_URL'] as const) {
    if (!env[name]) errors.push(`${name}: required when ${others(name)} is set (answers go out by SMTP)`);
  }
  if (!env.EMAIL_SMTP_PORT && !env.MAILGUN_SIGNING_KEY) {
    errors.push(
      'EMAIL_SMTP_PORT or MAILGUN_SIGNING_KEY: set at least one inbound path (SMTP listener or Mailgun route)',
    );
  }
  for (const name of [
    'EMAIL_SMTP_HOST',
    'EMAIL_TLS_KEY',
    'EMAIL_TLS_CERT',
    'EMAIL_TRUSTED_AUTHSERV_ID',
  ] as const) {
    if (env[name] && !env.EMAIL_SMTP_PORT)
      errors.push(`${name}: only used by the SMTP listener; set EMAIL_SMTP_PORT too`);
  }
  if (env.MAILGUN_VERIFY && !env.MAILGUN_SIGNING_KEY)
    errors.push('MAILGUN_VERIFY: only used by the Mailgun route; set MAILGUN_SIGNING_KEY too');
  if (Boolean(env.EMAIL_TLS_KEY) !== Boolean(env.EMAIL_TLS_CERT)) {
    errors.push(
      'EMAIL_TLS_KEY and EMAIL_TLS_CERT: set both (STARTTLS needs the key and its certificate) or neither',
    );
  }
  for (const name of ['EMAIL_TLS_KEY', 'EMAIL_TLS_CERT'] as const) {
    const path = env[name];
    if (path && !readable(path)) errors.push(`${name}: cannot read the file ${path}`);
  }
  const from = env.EMAIL_FROM ? parseFrom(env.EMAIL_FROM) : null;
  if (env.EMAIL_FROM && !from) {
    errors.push(
      'EMAIL_FROM: must be an address, e.g. support@example.com or "Example Support <support@example.com>"',
    );
  }
  if (from?.local.includes('+'))
    errors.push('EMAIL_FROM: must not contain "+" (the reply token is added after a "+")');
  // Fail closed: without the secret no bounce could be told from a forged one.
  if (!env.EMAIL_BOUNCE_SECRET) {
    errors.push(
      'EMAIL_BOUNCE_SECRET: required with the email channel (signs the bounce address of every answer), e.g. the output of `openssl rand -hex 32`',
    );
  }
  const accept = env.EMAIL_ACCEPT ? parseAccept(env.EMAIL_ACCEPT) : null;
  if (accept) errors.push(...accept.errors);
  const parsed = schema.safeParse(env);
  if (!parsed.success) errors.push(...parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`));
  if (errors.length > 0 || !parsed.success || !from) return { enabled: false, errors };

  const d = parsed.data;
  if (!d.EMAIL_BOUNCE_SECRET) return { enabled: false, errors };
  return {
    enabled: true,
    config: {
      from,
      smtpUrl: d.SMTP_URL,
      listener:
        d.EMAIL_SMTP_PORT === undefined
          ? null
          : {
              port: d.EMAIL_SMTP_PORT,
              host: d.EMAIL_SMTP_HOST,
              ...(env.EMAIL_TLS_KEY && env.EMAIL_TLS_CERT
                ? { tls: { keyPath: env.EMAIL_TLS_KEY, certPath: env.EMAIL_TLS_CERT } }
                : {}),
            },
      accept: accept?.rules ?? [{ kind: 'address', local: from.local, domain: from.domain }],
      maxBytes: d.EMAIL_MAX_BYTES,
      mailgunSigningKey: d.MAILGUN_SIGNING_KEY ?? null,
      mailgunVerify: d.MAILGUN_VERIFY,
      bounceSecret: d.EMAIL_BOUNCE_SECRET,
      trustedAuthservId: d.EMAIL_TRUSTED_AUTHSERV_ID?.toLowerCase() ?? null,
    },
  };
}
