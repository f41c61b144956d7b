/**
 * @module Rate limits per API key for `/v1` (SPEC §10; docs/limits.md): `RATE_LIMIT_PER_MIN` requests,
 * or the managed key's own `rateLimitPerMin` (docs/keys.md), per fixed one-minute window, counted by `rate-limiter-flexible` in Redis across every process (in
 * memory on the embedded backend). Every answer carries `RateLimit-Limit`, `RateLimit-Remaining` and
 * `RateLimit-Reset` (seconds until the window ends); over the limit the answer is `429` with
 * `Retry-After`.
 *
 * So that checking does not cost a Redis round trip per request, a process reserves tokens in
 * batches and spends them locally: a batch is 1/16 of what the window had left at the last look, at
 * most {@link MAX_BATCH}, and a single token when fewer than 32 are left, so near the limit every
 * request is counted in Redis and the limit is exact across processes. Once Redis has said no, the
 * process refuses locally until the window ends. When the counter cannot be reached, requests pass
 * (the limit fails open; the store's own errors still answer 503).
 */
import { hash } from 'node:crypto';
import type { RequestHandler, Response } from 'express';
import {
  type RateLimiterAbstract,
  RateLimiterMemory,
  RateLimiterRedis,
  RateLimiterRes,
} from 'rate-limiter-flexible';
import { GatewayError } from '../core/errors.js';
import type { Store } from '../core/store.js';
import type { Principal } from '../keys/model.js';
import { RedisStore } from '../store/redis/store.js';

/** The window: SPEC §10 counts per minute. */
export const WINDOW_S = 60;
/** The most tokens one process reserves at once. */
export const MAX_BATCH = 50;
/** A batch is this fraction of the tokens left in the window (1/16). */
const BATCH_DIVISOR = 16;

const ids = new Map<string, string>();

/**
 * A stable, non-secret id for the API key in an `Authorization` header (a hash prefix), for keys in
 * Redis. Only called after the key was accepted, so the cache holds at most the configured keys.
 */
export function apiKeyId(authorization: string | undefined): string {
  const header = authorization ?? '';
  let id = ids.get(header);
  if (id === undefined) {
    const token = header.replace(/^Bearer[ \t]+/i, '').trim();
    id = hash('sha256', token, 'base64url').slice(0, 22);
    if (ids.size >= 1024) ids.clear();
    ids.set(header, id);
  }
  return id;
}

interface Local {
  /** Tokens reserved in the counter and not spent yet. */
  tokens: number;
  /** What the counter had left after the last reservation. */
  remaining: number;
  /** When the current window ends (ms since the epoch). */
  windowEnd: number;
  /** The counter refused: refuse locally until `windowEnd`. */
  exhausted: boolean;
}

export interface Verdict {
  allowed: boolean;
  limit: number;
  remaining: number;
  /** Milliseconds until the window ends. */
  resetMs: number;
}

/** The batched counter over a rate-limiter-flexible limiter; see the module comment. */
export class KeyRateLimiter {
  readonly limit: number;
  readonly #limiter: RateLimiterAbstract;
  readonly #local = new Map<string, Local>();

  constructor(limiter: RateLimiterAbstract, limit: number) {
    this.#limiter = limiter;
    this.limit = limit;
  }

  /** Takes one token for `key`; resolves synchronously-fast when a reserved token is at hand. */
  check(key: string): Verdict | Promise<Verdict> {
    const now = Date.now();
    const s = this.#local.get(key);
    if (s !== undefined && now < s.windowEnd) {
      if (s.tokens > 0) {
        s.tokens--;
        return {
          allowed: true,
          limit: this.limit,
          remaining: s.remaining + s.tokens,
          resetMs: s.windowEnd - now,
        };
      }
      if (s.exhausted) return { allowed: false, limit: this.limit, remaining: 0, resetMs: s.windowEnd - now };
    }
    const left = s !== undefined && now < s.windowEnd ? s.remaining : 0;
    const batch = Math.max(1, Math.min(MAX_BATCH, Math.floor(left / BATCH_DIVISOR)));
    return this.#reserve(key, batch, now);
  }

  async #reserve(key: string, batch: number, now: number): Promise<Verdict> {
    let res: RateLimiterRes;
    let refused = false;
    try {
      res = await this.#limiter.consume(key, batch);
    } catch (err) {
      if (!(err instanceof RateLimiterRes)) throw err;
      res = err;
      refused = true;
    }
    // A refused batch may still partly fit: keep what fits, give the rest back.
    const over = refused ? Math.min(batch, res.consumedPoints - this.limit) : 0;
    const granted = batch - over;
    if (over > 0 && granted > 0) this.#limiter.reward(key, over).catch(() => {});
    const windowEnd = now + res.msBeforeNext;
    const s = this.#local.get(key);
    const local: Local = s ?? { tokens: 0, remaining: 0, windowEnd, exhausted: false };
    if (now >= local.windowEnd) local.tokens = 0; // the last window's leftovers are void
    local.windowEnd = windowEnd;
    local.remaining = Math.max(0, refused ? 0 : res.remainingPoints);
    local.exhausted = granted <= 0;
    if (s === undefined) {
      if (this.#local.size >= 10_000) this.#local.clear();
      this.#local.set(key, local);
    }
    if (granted <= 0) return { allowed: false, limit: this.limit, remaining: 0, resetMs: res.msBeforeNext };
    local.tokens += granted - 1;
    return {
      allowed: true,
      limit: this.limit,
      remaining: local.remaining + local.tokens,
      resetMs: res.msBeforeNext,
    };
  }
}

/** The limiter for a store: in Redis beside a Redis store (its connection and prefix), else in memory. */
export function keyRateLimiterFor(store: Store, perMinute: number): KeyRateLimiter {
  const opts = { points: perMinute, duration: WINDOW_S };
  if (store instanceof RedisStore) {
    const { redis, keys } = store.shared;
    return new KeyRateLimiter(
      new RateLimiterRedis({
        ...opts,
        storeClient: redis,
        keyPrefix: `${keys.prefix}:rl`,
        rejectIfRedisNotReady: true,
      }),
      perMinute,
    );
  }
  return new KeyRateLimiter(new RateLimiterMemory({ ...opts, keyPrefix: 'rl' }), perMinute);
}

function setHeaders(res: Response, v: Verdict): void {
  res.setHeader('RateLimit-Limit', String(v.limit));
  res.setHeader('RateLimit-Remaining', String(v.remaining));
  res.setHeader('RateLimit-Reset', String(Math.max(0, Math.ceil(v.resetMs / 1000))));
}

export interface RateLimitOptions {
  store: Store;
  /** Requests per minute per API key without a limit of its own; 0 turns that limit off. */
  perMinute: number;
  onError?: (err: unknown) => void;
}

/**
 * The middleware, mounted on the `/v1` router after the API key check. A request's limit is its
 * principal's own `rateLimitPerMin` when it has one, else `perMinute`; 0 is no limit. One batched
 * limiter per distinct limit (keys with the same limit share it, each counted under its own id).
 */
export function rateLimit(options: RateLimitOptions): RequestHandler {
  const limiters = new Map<number, KeyRateLimiter>();
  const limiterFor = (limit: number): KeyRateLimiter => {
    let limiter = limiters.get(limit);
    if (limiter === undefined) {
      limiter = keyRateLimiterFor(options.store, limit);
      limiters.set(limit, limiter);
    }
    return limiter;
  };
  const fallback = options.perMinute === 0 ? undefined : limiterFor(options.perMinute);
  const decide = (res: Response, v: Verdict, next: (err?: unknown) => void): void => {
    setHeaders(res, v);
    if (v.allowed) {
      next();
      return;
    }
    next(
      new GatewayError('GW_ERR_RATE_LIMITED', `More than ${v.limit} requests per minute for this API key`, {
        retryAfter: Math.max(1, Math.ceil(v.resetMs / 1000)),
      }),
    );
  };
  return function rateLimitMiddleware(req, res, next) {
    const principal = res.locals.principal as Principal | undefined;
    const own = principal?.rateLimitPerMin;
    const limiter = own === undefined ? fallback : own === 0 ? undefined : limiterFor(own);
    if (limiter === undefined) {
      next();
      return;
    }
    const verdict = limiter.check(principal?.keyId ?? apiKeyId(req.get('authorization')));
    if (!(verdict instanceof Promise)) {
      decide(res, verdict, next);
      return;
    }
    verdict.then(
      (v) => decide(res, v, next),
      (err: unknown) => {
        // The counter is unreachable: let the request through rather than refuse every caller.
        options.onError?.(err);
        res.setHeader('RateLimit-Limit', String(limiter.limit));
        next();
      },
    );
  };
}
