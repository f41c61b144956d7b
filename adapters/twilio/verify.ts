/**
 * @module `X-Twilio-Signature` checks, pure (no I/O). The signature is checked with twilio-node's own
 * `validateRequest` / `validateRequestWithBody` (HMAC-SHA1 with the auth token, constant-time compare)
 * against the URL Twilio was told to call: `PUBLIC_URL` plus the request path and query, never the Host
 * header, because the gateway usually sits behind a TLS-terminating proxy (twilio-node issue #321).
 * Twilio's scheme has no timestamp, so there is no freshness window to check; replays are caught by the
 * dedupe on `MessageSid`.
 *
 * Sources: https://www.twilio.com/docs/usage/webhooks/webhooks-security and twilio-node
 * `src/webhooks/webhooks.ts`.
 */
import twilio from 'twilio';

/** Decoded form parameters; a name sent more than once keeps every value, in order. */
export type Params = Record<string, string | string[]>;

/** Why a request was refused; logged and counted, never the signature itself. */
export type SignatureFailure =
  | 'missing_signature'
  /** The signature matches the URL the request was sent to, not `PUBLIC_URL` + path. */
  | 'url_mismatch'
  | 'bad_signature'
  /** The URL (with `bodySHA256`) is signed correctly but the body does not hash to it. */
  | 'body_hash_mismatch'
  /** A JSON body whose URL carries no `bodySHA256`: the body would not be covered by the signature. */
  | 'json_without_body_hash';

export interface SignedRequest {
  authToken: string;
  /** The `X-Twilio-Signature` header. */
  signature: string | undefined;
  /** `PUBLIC_URL` + the request's path and query: the URL Twilio signed. */
  url: string;
  /**
   * URLs the request may have been signed for instead (rebuilt from Host / X-Forwarded-Host with either
   * scheme); never accepted, only used to name the failure `url_mismatch`. A function is called only
   * then, so a request that verifies does not build them.
   */
  receivedUrls?: readonly string[] | (() => readonly string[]);
  /** The raw body as UTF-8 text. */
  body: string;
  /** How the body is encoded. */
  kind: 'form' | 'json';
}

export type VerifyResult = { ok: true; params: Params } | { ok: false; reason: SignatureFailure };

/**
 * A parameter map without a prototype: a parameter named `constructor`, `toString` or `__proto__` is
 * an entry like any other, where on a plain object it would read an inherited member (and a repeated
 * `__proto__` would replace the map's prototype), so the parameters checked would not be those signed.
 */
function emptyParams(): Params {
  return Object.create(null) as Params;
}

/**
 * Decodes an `application/x-www-form-urlencoded` body. Values are URL-decoded (`+` and `%20` both mean a
 * space): Twilio signs the decoded values, so signing the raw text would fail (CHANNELS.md §1.1).
 */
export function parseForm(body: string): Params {
  const params = emptyParams();
  for (const [name, value] of new URLSearchParams(body)) {
    const prev = params[name];
    if (prev === undefined) params[name] = value;
    else if (Array.isArray(prev)) prev.push(value);
    else params[name] = [prev, value];
  }
  return params;
}

/**
 * Reads a JSON object body as parameters: strings, numbers and booleans become strings; anything else
 * (nested objects, a body that is not an object) is left out, so required fields are then reported missing.
 */
export function parseJson(body: string): Params {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    return emptyParams();
  }
  const params = emptyParams();
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return params;
  for (const [name, v] of Object.entries(value)) {
    if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') params[name] = String(v);
  }
  return params;
}

/** True when the URL's query carries `bodySHA256`: Twilio's JSON-body variant (CHANNELS.md §1.3). */
export function hasBodyHash(url: string): boolean {
  const query = url.indexOf('?');
  return query !== -1 && new URLSearchParams(url.slice(query + 1)).has('bodySHA256');
}

/**
 * Verifies a Twilio webhook. Form bodies: every received parameter (repeated ones included) is part of
 * the signed string, so parameters Twilio adds later never break verification. JSON bodies: the URL
 * carries `bodySHA256`, the signature covers the URL alone, and the body must hash to it.
 */
export function verifyTwilioRequest(req: SignedRequest): VerifyResult {
  if (!req.signature) return { ok: false, reason: 'missing_signature' };
  const { authToken, signature } = req;
  if (hasBodyHash(req.url)) {
    if (safe(() => twilio.validateRequestWithBody(authToken, signature, req.url, req.body))) {
      return { ok: true, params: req.kind === 'form' ? parseForm(req.body) : parseJson(req.body) };
    }
    if (safe(() => twilio.validateRequest(authToken, signature, req.url, {}))) {
      return { ok: false, reason: 'body_hash_mismatch' };
    }
    return { ok: false, reason: failureFor(req, {}) };
  }
  if (req.kind === 'json') return { ok: false, reason: 'json_without_body_hash' };
  const params = parseForm(req.body);
  if (safe(() => twilio.validateRequest(authToken, signature, req.url, params))) return { ok: true, params };
  return { ok: false, reason: failureFor(req, params) };
}

/** Names a failed check: a signature made for a URL other than `PUBLIC_URL` + path is a `url_mismatch`. */
function failureFor(req: SignedRequest, params: Params): SignatureFailure {
  const { authToken, signature = '' } = req;
  const received = typeof req.receivedUrls === 'function' ? req.receivedUrls() : (req.receivedUrls ?? []);
  const other = received.filter((u) => u !== req.url);
  if (other.some((u) => safe(() => twilio.validateRequest(authToken, signature, u, params))))
    return 'url_mismatch';
  return 'bad_signature';
}

/** twilio-node parses the URL with `new URL()`, which throws on a malformed one: that is a failed check. */
function safe(check: () => boolean): boolean {
  try {
    return check();
  } catch {
    return false;
  }
}
