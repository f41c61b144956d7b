/**
 * @module Pure checks for the web-chat socket: the visitor's JWT (algorithms pinned per key, never read
 * from the token header; `exp` and `sub` required; `aud`/`iss` when configured) and the `Origin` allowlist.
 * Clocks are injectable so tests need no sleeps.
 */
import jwt from 'jsonwebtoken';
import type { SenderIdentity, SenderIdentityFact } from '../../src/core/index.js';
import type { TokenKeys } from './config.js';

/** The visitor a verified token speaks for. */
export interface Visitor {
  /** The token's `sub`: the visitor's stable id and the conversation's `channelRef`. */
  id: string;
  name?: string;
  email?: string;
  /** The OpenID `email_verified` claim: true only when the site says it checked the address. */
  emailVerified?: boolean;
  /** The OpenID `phone_number` claim (E.164) and its `phone_number_verified`. */
  phone?: string;
  phoneVerified?: boolean;
  /** Expiry in milliseconds since the epoch. */
  expiresAt: number;
}

export type TokenCheck =
  | { ok: true; visitor: Visitor }
  | { ok: false; reason: 'expired' | 'invalid'; detail: string };

export interface TokenVerifier {
  keys: TokenKeys;
  /** The key material for `keys.mode === 'demo'` (the demo secret, resolved at start). */
  demoSecret?: string;
  audience?: string;
  issuer?: string;
}

/** Longest `sub` accepted; it becomes a store key. */
const MAX_SUB_LENGTH = 200;
const MAX_CLAIM_LENGTH = 200;

/**
 * Verifies a visitor token. `jsonwebtoken` pins the algorithm list (so `alg: none` and HS/RS confusion are
 * refused, RFC 8725 §3.1), checks the signature, `exp`, `nbf`, `aud` and `iss`; this adds the claims
 * SPEC §7 requires (`exp` present, `sub` a non-empty string).
 */
export function verifyVisitorToken(
  token: string,
  verifier: TokenVerifier,
  nowMs: number = Date.now(),
): TokenCheck {
  const key = verifier.keys.mode === 'publicKey' ? verifier.keys.key : keyOf(verifier);
  if (!key) return { ok: false, reason: 'invalid', detail: 'no key to verify with' };
  let payload: jwt.JwtPayload | string;
  try {
    payload = jwt.verify(token, key, {
      algorithms: verifier.keys.algorithms,
      audience: verifier.audience,
      issuer: verifier.issuer,
      clockTimestamp: Math.floor(nowMs / 1000),
    });
  } catch (err) {
    if (err instanceof jwt.TokenExpiredError) {
      return { ok: false, reason: 'expired', detail: 'token expired' };
    }
    return { ok: false, reason: 'invalid', detail: err instanceof Error ? err.message : 'invalid token' };
  }
  if (typeof payload === 'string') {
    return { ok: false, reason: 'invalid', detail: 'payload is not a JSON object' };
  }
  if (typeof payload.exp !== 'number') return { ok: false, reason: 'invalid', detail: 'exp claim missing' };
  const sub = payload.sub;
  if (typeof sub !== 'string' || sub.length === 0 || sub.length > MAX_SUB_LENGTH) {
    return { ok: false, reason: 'invalid', detail: 'sub claim missing or too long' };
  }
  return {
    ok: true,
    visitor: {
      id: sub,
      name: optionalString(payload.name),
      email: optionalString(payload.email),
      ...(payload.email_verified === true ? { emailVerified: true } : {}),
      ...(optionalString(payload.phone_number) ? { phone: optionalString(payload.phone_number) } : {}),
      ...(payload.phone_number_verified === true ? { phoneVerified: true } : {}),
      expiresAt: payload.exp * 1000,
    },
  };
}

function keyOf(verifier: TokenVerifier): string | undefined {
  return verifier.keys.mode === 'secret' ? verifier.keys.secret : verifier.demoSecret;
}

/**
 * What the site's token vouches for (SPEC §9): the visitor (`sub`, signed by the site), and the
 * `email` / `phone_number` claims, each verified only with its OpenID `*_verified: true` claim.
 */
export function visitorIdentity(visitor: Visitor): SenderIdentity {
  const also: SenderIdentityFact[] = [];
  if (visitor.email)
    also.push({
      channel: 'email',
      address: visitor.email,
      verified: visitor.emailVerified === true,
      source: 'webchat_jwt',
    });
  if (visitor.phone)
    also.push({
      channel: 'sms',
      address: visitor.phone,
      verified: visitor.phoneVerified === true,
      source: 'webchat_jwt',
    });
  return { verified: true, source: 'webchat_jwt', address: visitor.id, also };
}

function optionalString(value: unknown): string | undefined {
  return typeof value === 'string' && value.length > 0 && value.length <= MAX_CLAIM_LENGTH
    ? value
    : undefined;
}

/**
 * Whether a browser page at `origin` may open the socket. With an allowlist, exactly its origins; without
 * one, `PUBLIC_URL`'s origin and pages served by the gateway itself (the `Origin` host equals the `Host`
 * header, so the demo page works at http://127.0.0.1:3000 as well as at http://localhost:3000). A request
 * without `Origin` is not from a browser (browsers always send it on WebSocket handshakes, RFC 6455 §4.1);
 * it still needs a valid token.
 */
export function isOriginAllowed(
  origin: string | undefined,
  host: string | undefined,
  allowed: { list?: readonly string[]; publicOrigin: string },
): boolean {
  if (origin === undefined) return true;
  let parsed: URL;
  try {
    parsed = new URL(origin);
  } catch {
    return false;
  }
  if (allowed.list) return allowed.list.includes(parsed.origin);
  if (parsed.origin === allowed.publicOrigin) return true;
  return host !== undefined && parsed.host === host.toLowerCase();
}
