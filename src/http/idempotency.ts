/**
 * @module `Idempotency-Key` for every `POST`, `PATCH` and `DELETE` under `/v1` (SPEC §10;
 * docs/limits.md). A key is scoped to the API key that sent it and bound to a fingerprint of the
 * method, path and body. The first request marks the key in flight, runs, and its answer (status, the
 * headers that describe the body, the body) is stored for {@link IDEMPOTENCY_TTL_S} before it is sent;
 * a retry gets that answer again with `Idempotent-Replayed: true`. A duplicate that arrives while the
 * first is still running waits for it (up to {@link IN_FLIGHT_WAIT_MS}), then answers `409` with
 * `Retry-After`. Another method, path or body under the same key is `422`. A 5xx answer is not kept:
 * the marker is dropped so the retry runs again. A process that dies mid-request leaves a marker that
 * expires after {@link IN_FLIGHT_TTL_S}, so the key is never wedged. Members a route marks secret
 * (`res.locals.secretFields`, e.g. a new API key) are kept as null: a replay never carries them.
 *
 * Storage is the store's key/value space (`Store.kv`): Redis when the gateway runs on Redis (shared by
 * every process), in memory on the embedded backend.
 */
import { hash, randomUUID } from 'node:crypto';
import type { RequestHandler, Response } from 'express';
import { GatewayError } from '../core/errors.js';
import type { KeyValue } from '../core/store.js';
import type { Principal } from '../keys/model.js';
import { validationError } from './api/schemas.js';
import { apiKeyId } from './rate-limit.js';

/** How long an answer is kept for replay: 24 h (SPEC §10). */
export const IDEMPOTENCY_TTL_S = 86_400;
/**
 * How long an in-flight marker lives without an answer. Longer than the slowest request (`POST
 * /v1/messages` waits at most 30 s for the bot), short enough that a crash frees the key soon.
 */
export const IN_FLIGHT_TTL_S = 60;
/** How long a duplicate waits for the first request's answer before it is told to come back (409). */
export const IN_FLIGHT_WAIT_MS = 10_000;
/** The Retry-After of that 409. */
const IN_FLIGHT_RETRY_AFTER_S = 1;

/** Printable ASCII without spaces, 1 to 255 characters (a UUID or ULID fits). */
const KEY_FORM = /^[\x21-\x7e]{1,255}$/;
const METHODS = new Set(['POST', 'PATCH', 'DELETE']);
/** The response headers a replay repeats: those describing the body and the resource. */
const KEPT_HEADERS = ['content-type', 'location', 'etag', 'last-modified'] as const;

interface InFlight {
  state: 'running';
  fp: string;
  owner: string;
}
interface Done {
  state: 'done';
  fp: string;
  status: number;
  headers: Record<string, string>;
  /** The body, base64. */
  body: string;
}
type Entry = InFlight | Done;

function parse(raw: string | null): Entry | undefined {
  if (raw === null) return undefined;
  try {
    return JSON.parse(raw) as Entry;
  } catch {
    return undefined;
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function replay(res: Response, done: Done): void {
  for (const [name, value] of Object.entries(done.headers)) res.setHeader(name, value);
  res.setHeader('Idempotent-Replayed', 'true');
  res.status(done.status).end(Buffer.from(done.body, 'base64'));
}

function reused(): GatewayError {
  return new GatewayError(
    'GW_ERR_IDEMPOTENCY_KEY_REUSED',
    'This Idempotency-Key was used for another request (method, path or body); use a new key',
  );
}

export interface IdempotencyOptions {
  /** Where keys live: the store's key/value space. */
  kv: KeyValue;
  /** Overrides for tests. */
  ttlS?: number;
  inFlightTtlS?: number;
  waitMs?: number;
}

/**
 * The middleware, mounted on the `/v1` router after the API key check and the body parser (it needs
 * both). Requests without the header, and other methods, pass untouched.
 */
export function idempotency(options: IdempotencyOptions): RequestHandler {
  const { kv } = options;
  const ttlS = options.ttlS ?? IDEMPOTENCY_TTL_S;
  const inFlightTtlS = options.inFlightTtlS ?? IN_FLIGHT_TTL_S;
  const waitMs = options.waitMs ?? IN_FLIGHT_WAIT_MS;

  return function idempotencyMiddleware(req, res, next) {
    const key = req.headers['idempotency-key'];
    if (key === undefined || !METHODS.has(req.method)) {
      next();
      return;
    }
    if (typeof key !== 'string' || !KEY_FORM.test(key)) {
      next(
        validationError([
          { field: 'Idempotency-Key', message: 'must be 1 to 255 printable ASCII characters without spaces' },
        ]),
      );
      return;
    }
    const principal = res.locals.principal as Principal | undefined;
    const storageKey = `idem:${principal?.keyId ?? apiKeyId(req.get('authorization'))}:${key}`;
    const fp = hash(
      'sha256',
      `${req.method}\n${req.originalUrl}\n${req.body === undefined ? '' : JSON.stringify(req.body)}`,
      'base64',
    );
    const owner = randomUUID();

    const run = async (): Promise<void> => {
      const deadline = Date.now() + waitMs;
      let pause = 20;
      for (;;) {
        const marker: InFlight = { state: 'running', fp, owner };
        if (await kv.setIfAbsent(storageKey, JSON.stringify(marker), inFlightTtlS)) break;
        const entry = parse(await kv.get(storageKey));
        if (entry !== undefined && entry.fp !== fp) throw reused();
        if (entry?.state === 'done') {
          replay(res, entry);
          return;
        }
        // Still running, or gone (expired, or dropped after a 5xx) between the two calls: try again.
        if (Date.now() >= deadline) {
          throw new GatewayError('GW_ERR_IDEMPOTENCY_IN_FLIGHT', undefined, {
            retryAfter: IN_FLIGHT_RETRY_AFTER_S,
          });
        }
        await sleep(pause);
        pause = Math.min(pause * 2, 200);
      }
      capture(
        res,
        async (status, body) => {
          if (status >= 500) {
            await kv.delete(storageKey);
            return;
          }
          const headers: Record<string, string> = {};
          for (const name of KEPT_HEADERS) {
            const value = res.getHeader(name);
            if (value !== undefined) headers[name] = String(value);
          }
          const secrets = res.locals.secretFields as readonly string[] | undefined;
          const kept = secrets === undefined ? body : withoutSecrets(body, secrets);
          const done: Done = { state: 'done', fp, status, headers, body: kept.toString('base64') };
          await kv.set(storageKey, JSON.stringify(done), ttlS);
        },
        (err) => req.log?.warn({ err }, 'idempotency: the answer could not be stored'),
      );
      next();
    };
    run().catch(next);
  };
}

/**
 * A JSON answer with its secret members (a route names them in `res.locals.secretFields`) set to
 * null: a secret shown once, such as a new API key, is never kept for replay.
 */
function withoutSecrets(body: Buffer, fields: readonly string[]): Buffer {
  try {
    const value = JSON.parse(body.toString('utf8')) as Record<string, unknown>;
    for (const field of fields) if (Object.hasOwn(value, field)) value[field] = null;
    return Buffer.from(JSON.stringify(value));
  } catch {
    // Not JSON: nothing of it is kept.
    return Buffer.alloc(0);
  }
}

/**
 * Collects what is written to `res` and, when the route ends it, calls `store` with the status and
 * body before the answer goes out: a client never sees an answer a retry could not replay.
 */
function capture(
  res: Response,
  store: (status: number, body: Buffer) => Promise<void>,
  onStoreError: (err: unknown) => void,
): void {
  const chunks: Buffer[] = [];
  const write = res.write.bind(res) as (...args: unknown[]) => boolean;
  const end = res.end.bind(res) as (...args: unknown[]) => Response;
  const toBuffer = (chunk: unknown, encoding: unknown): Buffer | undefined => {
    if (chunk === undefined || chunk === null || typeof chunk === 'function') return undefined;
    if (Buffer.isBuffer(chunk)) return chunk;
    if (chunk instanceof Uint8Array) return Buffer.from(chunk);
    return Buffer.from(String(chunk), typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8');
  };
  (res as { write: unknown }).write = (chunk: unknown, encoding?: unknown, cb?: unknown) => {
    const b = toBuffer(chunk, encoding);
    if (b) chunks.push(b);
    return write(chunk, encoding, cb);
  };
  (res as { end: unknown }).end = (chunk?: unknown, encoding?: unknown, cb?: unknown) => {
    const b = toBuffer(chunk, encoding);
    if (b) chunks.push(b);
    (res as { end: unknown }).end = end;
    store(res.statusCode, Buffer.concat(chunks))
      .catch(onStoreError)
      .finally(() => end(chunk, encoding, cb));
    return res;
  };
}
