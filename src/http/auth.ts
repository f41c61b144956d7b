/**
 * @module API key authentication for `/v1` (`Authorization: Bearer <key>`). Keys are compared in
 * constant time and never logged; a refusal is a 401 problem with `WWW-Authenticate: Bearer`, a key
 * without the route's scope a 403 naming the scope (RFC 6750 §3.1).
 */
import { hash, timingSafeEqual } from 'node:crypto';
import type { Request, RequestHandler, Response } from 'express';
import { GatewayError } from '../core/errors.js';
import type { Principal, Scope } from '../keys/model.js';

const BEARER = /^Bearer[ \t]+(\S+)[ \t]*$/i;

function sha256(value: string): Buffer {
  // The one-shot hash: no Hash object per request.
  return hash('sha256', value, 'buffer');
}

/**
 * Checks a request's bearer token against `keys`: the refusal to pass on (a 401, with
 * `WWW-Authenticate` set on `res`), or undefined when the key is one of them ({@link apiKeyMatch}).
 *
 * @throws TypeError at construction when `keys` is empty or holds an empty key (fail closed).
 */
export function apiKeyCheck(
  keys: readonly string[],
): (req: Request, res: Response) => GatewayError | undefined {
  const match = apiKeyMatch(keys);
  return function apiKeyCheck(req, res) {
    const verdict = match(req.get('authorization'));
    return verdict === undefined ? undefined : unauthorized(res, verdict);
  };
}

/** The 401 for a request without a bearer token (`missing`) or with one that is no key (`invalid`). */
function unauthorized(res: Response, verdict: 'missing' | 'invalid'): GatewayError {
  if (verdict === 'missing') {
    res.setHeader('WWW-Authenticate', 'Bearer realm="switchboard"');
    return new GatewayError('GW_ERR_UNAUTHORIZED', 'Send the API key as `Authorization: Bearer <key>`');
  }
  res.setHeader('WWW-Authenticate', 'Bearer realm="switchboard", error="invalid_token"');
  return new GatewayError('GW_ERR_UNAUTHORIZED', 'The API key is not valid');
}

/** The 403 for a key without `scope`; the problem names it as `scope`. */
export function insufficientScope(res: Response, scope: Scope): GatewayError {
  res.setHeader(
    'WWW-Authenticate',
    `Bearer realm="switchboard", error="insufficient_scope", scope="${scope}"`,
  );
  return new GatewayError('GW_ERR_INSUFFICIENT_SCOPE', `This API key lacks the scope \`${scope}\``, {
    scope,
  });
}

/** What checks a raw `Authorization` header: the key service (src/keys/service.ts). */
export interface PrincipalSource {
  check(
    authorization: string | undefined,
  ): Principal | undefined | 'missing' | Promise<Principal | undefined>;
}

/**
 * The principal of a request, or the 401 to pass on (with `WWW-Authenticate` set on `res`):
 * synchronous for keys in `API_KEYS` and cached managed keys. A key that cannot be checked now
 * rejects with the store's 503.
 */
export function principalCheck(
  keys: PrincipalSource,
): (req: Request, res: Response) => Principal | GatewayError | Promise<Principal | GatewayError> {
  return function principalCheck(req, res) {
    const verdict = keys.check(req.get('authorization'));
    if (verdict instanceof Promise) return verdict.then((p) => p ?? unauthorized(res, 'invalid'));
    if (verdict === 'missing') return unauthorized(res, 'missing');
    return verdict ?? unauthorized(res, 'invalid');
  };
}

/**
 * The comparison behind {@link apiKeyCheck}, on the raw `Authorization` header: `missing` (no bearer
 * token), `invalid` (not one of `keys`) or undefined (accepted). Also used before a request is handed
 * to the app at all (`Expect: 100-continue`).
 *
 * Both sides are hashed first so every comparison is over 32 bytes whatever the key lengths (a plain
 * `timingSafeEqual` would leak the length), and every key is compared without an early exit so the
 * time taken does not tell which key, if any, matched.
 *
 * @throws TypeError at construction when `keys` is empty or holds an empty key (fail closed).
 */
export function apiKeyMatch(
  keys: readonly string[],
): (authorization: string | undefined) => 'missing' | 'invalid' | undefined {
  if (keys.length === 0 || keys.some((k) => k.length === 0)) {
    throw new TypeError('Expected `keys` to be a non-empty list of non-empty API keys');
  }
  const digests = keys.map(sha256);
  return function apiKeyMatch(authorization) {
    const match = BEARER.exec(authorization ?? '');
    if (!match) return 'missing';
    const presented = sha256(match[1]!);
    let ok = false;
    for (const digest of digests) ok = timingSafeEqual(presented, digest) || ok;
    return ok ? undefined : 'invalid';
  };
}

/**
 * {@link apiKeyCheck} as middleware: accepts a request whose bearer token equals one of `keys`, or one
 * the `/v1` gate already accepted (with its scope checked there), such as a managed key.
 */
export function apiKeyAuth(keys: readonly string[]): RequestHandler {
  const check = apiKeyCheck(keys);
  return function apiKeyAuthMiddleware(req, res, next) {
    if (res.locals.principal !== undefined) next();
    else next(check(req, res));
  };
}
