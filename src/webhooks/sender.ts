/**
 * @module One delivery attempt: a signed JSON POST to the endpoint, over a connection pinned to the
 * address the SSRF check vetted. Following the Standard Webhooks delivery rules: any 2xx is success,
 * a 3xx is a failure (redirects are never followed, they could lead anywhere), `410 Gone` asks the
 * sender to stop, everything else (429, 5xx, other 4xx, timeouts, resets) is a failure to retry.
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { parseRetryAfter } from '../core/backoff.js';
import { pinnedLookup, type Resolver, TargetRefusedError, vetTarget } from './ssrf.js';

export type AttemptOutcome =
  | { kind: 'success'; status: number; latencyMs: number }
  | { kind: 'gone'; status: 410; latencyMs: number }
  | {
      kind: 'failure';
      status: number | null;
      error: string;
      latencyMs: number;
      /** From `Retry-After` on 429 and 503. */
      retryAfterMs?: number;
    }
  /** The SSRF policy refused the address the host resolves to now; nothing was sent. */
  | { kind: 'refused'; status: null; error: string; latencyMs: 0 };

export interface SendOptions {
  timeoutMs: number;
  allowPrivate: boolean;
  resolve?: Resolver;
  /** Aborts the attempt (gateway shutdown). */
  signal?: AbortSignal;
  userAgent?: string;
}

/** Posts `body` to `url` with `headers` and classifies the answer; never throws. */
export async function sendAttempt(
  url: string,
  body: string,
  headers: Record<string, string>,
  opts: SendOptions,
): Promise<AttemptOutcome> {
  const target = new URL(url);
  let address: Awaited<ReturnType<typeof vetTarget>>[number];
  try {
    [address] = (await vetTarget(target, { allowPrivate: opts.allowPrivate, resolve: opts.resolve })) as [
      typeof address,
    ];
  } catch (err) {
    if (err instanceof TargetRefusedError)
      return { kind: 'refused', status: null, error: err.message, latencyMs: 0 };
    throw err;
  }
  const started = performance.now();
  const elapsed = () => Math.round(performance.now() - started);
  return new Promise<AttemptOutcome>((resolve) => {
    let settled = false;
    const settle = (outcome: AttemptOutcome) => {
      if (settled) return;
      settled = true;
      resolve(outcome);
    };
    const request = target.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = request(target, {
      method: 'POST',
      headers: {
        ...headers,
        'content-type': 'application/json',
        'content-length': String(Buffer.byteLength(body)),
        'user-agent': opts.userAgent ?? 'Switchboard-Webhooks/1',
      },
      lookup: pinnedLookup(address),
      // A fresh connection per attempt: a pooled socket could have been opened to another address.
      agent: false,
      signal: opts.signal,
    });
    // One deadline for the whole exchange, connect and body included.
    const timer = setTimeout(() => {
      settle({
        kind: 'failure',
        status: null,
        error: `timed out after ${opts.timeoutMs} ms`,
        latencyMs: elapsed(),
      });
      req.destroy();
    }, opts.timeoutMs);
    req.on('response', (res: IncomingMessage) => {
      settle(classify(res, elapsed()));
      // The body is not needed; drain it so the socket closes cleanly, within the same deadline.
      res.on('end', () => clearTimeout(timer));
      res.on('error', () => clearTimeout(timer));
      res.resume();
    });
    req.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      settle({
        kind: 'failure',
        status: null,
        error: opts.signal?.aborted ? 'aborted at shutdown' : `connection failed: ${err.code ?? err.message}`,
        latencyMs: elapsed(),
      });
    });
    req.end(body);
  });
}

function classify(res: IncomingMessage, latencyMs: number): AttemptOutcome {
  const status = res.statusCode ?? 0;
  if (status >= 200 && status < 300) return { kind: 'success', status, latencyMs };
  if (status === 410) return { kind: 'gone', status, latencyMs };
  if (status >= 300 && status < 400) {
    return { kind: 'failure', status, error: `HTTP ${status}: redirects are not followed`, latencyMs };
  }
  const retryAfterMs =
    status === 429 || status === 503 ? parseRetryAfter(res.headers['retry-after'] ?? null) : undefined;
  return {
    kind: 'failure',
    status,
    error: `HTTP ${status}`,
    latencyMs,
    ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
  };
}
