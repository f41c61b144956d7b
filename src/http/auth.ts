/**
 * @module API key authentication for `/v1` (`Authorization: Bearer <key>`). Keys are compared in
 * constant time and never logged; a refusal is a 401 problem with `WWW-Authenticate: Bearer`.
 */
import { hash, timingSafeEqual } from 'node:crypto';
import type { Request, RequestHandler, Response } from 'express';
import { GatewayError } from '../core/errors.js';

const BEARER = /^Bearer[ \t]+(\S+)[ \t]*$/i;

function sha256(value: string): Buffer {
  // The one-shot hash: no Hash object per request.
  return hash('sha256', value, 'buffer');
}

/**
 * Checks a request's bearer token against `keys`: the refusal to pass on (a 401, with
 * `WWW-Authenticate` set on `res`), or undefined when the key is one of them.
 *
 * Both sides are hashed first so every comparison is over 32 bytes whatever the key lengths (a plain
 * `timingSafeEqual` would leak the length), and every key is compared without an early exit so the
 * time taken does not tell which key, if any, matched.
 *
 * @throws TypeError at construction when `keys` is empty or holds an empty key (fail closed).
 */
export function apiKeyCheck(
  keys: readonly string[],
): (req: Request, res: Response) => GatewayError | undefined {
  if (keys.length === 0 || keys.some((k) => k.length === 0)) {
    throw new TypeError('Expected `keys` to be a non-empty list of non-empty API keys');
  }
  const digests = keys.map(sha256);
  return function apiKeyCheck(req, res) {
    const match = BEARER.exec(req.get('authorization') ?? '');
    if (!match) {
      res.setHeader('WWW-Authenticate', 'Bearer realm="switchboard"');
      return new GatewayError('GW_ERR_UNAUTHORIZED', 'Send the API key as `Authorization: Bearer <key>`');
    }
    const presented = sha256(match[1]!);
    let ok = false;
    for (const digest of digests) ok = timingSafeEqual(presented, digest) || ok;
    if (!ok) {
      res.setHeader('WWW-Authenticate', 'Bearer realm="switchboard", error="invalid_token"');
      return new GatewayError('GW_ERR_UNAUTHORIZED', 'The API key is not valid');
    }
    return undefined;
  };
}

/** {@link apiKeyCheck} as middleware: accepts a request whose bearer token equals one of `keys`. */
export function apiKeyAuth(keys: readonly string[]): RequestHandler {
  const check = apiKeyCheck(keys);
  return function apiKeyAuthMiddleware(req, res, next) {
    next(check(req, res));
  };
}
