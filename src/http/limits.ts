/**
 * @module The `/v1` limits (docs/limits.md) as one router layer: the per-key rate limit
 * ({@link rateLimit}), then `Idempotency-Key` ({@link idempotency}). One layer rather than two: every
 * router layer is one more match and dispatch on every request.
 */
import type { RequestHandler } from 'express';
import type { GatewayDeps } from '../deps.js';
import type { Principal } from '../keys/model.js';
import { idempotency } from './idempotency.js';
import { rateLimit } from './rate-limit.js';

/**
 * Mounted on the `/v1` router after the API key check and the body parser. `RATE_LIMIT_PER_MIN=0`
 * leaves only the idempotency check for keys without a limit of their own (docs/keys.md).
 */
export function apiLimits(deps: Pick<GatewayDeps, 'store' | 'config' | 'logger'>): RequestHandler {
  const idem = idempotency({ kv: deps.store.kv });
  const perMinute = deps.config.RATE_LIMIT_PER_MIN;
  let warnedAt = Number.NEGATIVE_INFINITY;
  const limit = rateLimit({
    store: deps.store,
    perMinute,
    // Once per 10 s at most: while Redis is away every request would say it.
    onError: (err) => {
      if (Date.now() - warnedAt < 10_000) return;
      warnedAt = Date.now();
      deps.logger.warn({ err }, 'rate limit: the counter is unreachable; letting requests through');
    },
  });
  return function apiLimitsMiddleware(req, res, next) {
    if (perMinute === 0 && (res.locals.principal as Principal | undefined)?.rateLimitPerMin === undefined) {
      idem(req, res, next);
      return;
    }
    limit(req, res, (err?: unknown) => {
      if (err !== undefined) next(err);
      else idem(req, res, next);
    });
  };
}
