/**
 * @module `Expect: 100-continue` (RFC 9110 §10.1.1). Node answers `100 Continue` to every such request
 * by itself unless the server listens for `checkContinue`, so a client uploading a large body to
 * `/v1` without a valid key was invited to send it all before hearing 401. Here the request is
 * judged first, and `100 Continue` is written only when the app will read the body:
 *
 * - an API request without a valid key goes to the app as it is, which answers 401 from the headers
 *   alone (the key is checked before anything is read);
 * - a declared length above `BODY_LIMIT_BYTES` is answered 413 here: the body parsers would wait to
 *   drain a body that, without `100 Continue`, never comes.
 *
 * Either way the connection closes after the answer, so an unsent body cannot be read as the next
 * request.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, RequestListener, Server, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { GatewayError } from '../core/errors.js';
import { apiKeyMatch, type PrincipalSource } from './auth.js';
import { problemType } from './errors.js';
import { pathOf, REQUEST_ID_HEADER } from './request-id.js';

export interface ContinueOptions {
  /** The API keys of `/v1`. */
  apiKeys: readonly string[];
  /** Managed keys (src/keys): a key not in `apiKeys` is asked about here. */
  keys?: PrincipalSource;
  /** The largest body any route reads (`BODY_LIMIT_BYTES`). */
  bodyLimitBytes: number;
  logger: Logger;
}

/** True for the paths the `/v1` router serves (Express matches paths case-insensitively). */
function isApiPath(url: string | undefined): boolean {
  const path = (url ?? '').slice(0, 4).toLowerCase();
  return path === '/v1' || path.startsWith('/v1/') || path.startsWith('/v1?');
}

type Refusal = 'too_large' | 'unauthorized' | undefined;

/**
 * Why the app will refuse this request without reading its body, or undefined when it will read it:
 * an API request without a valid key, or a declared length above the body limit. Asynchronous only
 * for a managed key that is not cached; one that cannot be checked now counts as refused (the app
 * then answers its 503 from the headers).
 */
export function refusedBeforeBody(
  options: ContinueOptions,
): (req: IncomingMessage) => Refusal | Promise<Refusal> {
  const matchKey = apiKeyMatch(options.apiKeys);
  const bySize = (req: IncomingMessage): Refusal => {
    const length = req.headers['content-length'];
    if (length !== undefined && Number(length) > options.bodyLimitBytes) return 'too_large';
    return undefined;
  };
  return (req) => {
    // The key first, as the API checks it: an unauthenticated caller learns nothing about limits.
    if (!isApiPath(req.url)) return bySize(req);
    const verdict = matchKey(req.headers.authorization);
    if (verdict === undefined) return bySize(req);
    if (verdict === 'missing' || options.keys === undefined) return 'unauthorized';
    const managed = options.keys.check(req.headers.authorization);
    if (!(managed instanceof Promise)) return typeof managed === 'object' ? bySize(req) : 'unauthorized';
    return managed.then(
      (p) => (p === undefined ? 'unauthorized' : bySize(req)),
      () => 'unauthorized' as const,
    );
  };
}

/** The 413 problem, written without the app (see the module comment); logged as the app would. */
function tooLarge(req: IncomingMessage, res: ServerResponse, options: ContinueOptions): void {
  const limit = options.bodyLimitBytes;
  const error = new GatewayError(
    'GW_ERR_PAYLOAD_TOO_LARGE',
    `The request body exceeds the limit of ${limit} bytes`,
  );
  const requestId = randomUUID();
  options.logger.info(
    {
      reqId: requestId,
      method: req.method,
      path: pathOf(req.url ?? ''),
      code: error.code,
      status: error.status,
    },
    'request rejected before its body (Expect: 100-continue)',
  );
  const body = JSON.stringify({
    type: problemType(error.code),
    title: error.title,
    status: error.status,
    detail: error.message,
    code: error.code,
    requestId,
    limit,
  });
  res.writeHead(error.status, {
    'content-type': 'application/problem+json; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    [REQUEST_ID_HEADER]: requestId,
  });
  res.end(body);
}

/**
 * Handles `checkContinue` on `server`, dispatching every request it does not refuse to `app`, with
 * the API keys and body limit of `config`.
 */
export function handleExpectContinue(
  server: Server,
  app: RequestListener,
  config: { apiKeys: readonly string[]; BODY_LIMIT_BYTES: number; keys?: PrincipalSource },
  logger: Logger,
  draining: () => boolean = () => false,
): void {
  const options: ContinueOptions = {
    apiKeys: config.apiKeys,
    bodyLimitBytes: config.BODY_LIMIT_BYTES,
    logger,
    ...(config.keys ? { keys: config.keys } : {}),
  };
  const refused = refusedBeforeBody(options);
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    // Shutting down: the app answers 503 from the headers alone, so the body is never invited.
    if (draining()) {
      res.shouldKeepAlive = false;
      app(req, res);
      return;
    }
    const answer = (reason: Refusal): void => {
      if (reason === undefined) {
        res.writeContinue();
        app(req, res);
        return;
      }
      res.shouldKeepAlive = false;
      if (reason === 'too_large') tooLarge(req, res, options);
      else app(req, res);
    };
    const reason = refused(req);
    if (reason instanceof Promise) void reason.then(answer);
    else answer(reason);
  });
}
