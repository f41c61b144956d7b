/**
 * @module The one error sink of the HTTP app. Every error, whoever threw it, is logged once with its
 * code and answered as `application/problem+json` (RFC 9457) with a stable `code` from the registry.
 */
import type { ErrorRequestHandler, RequestHandler } from 'express';
import type { Logger } from 'pino';
import { type ErrorCode, GatewayError, isGatewayError } from '../core/errors.js';
import { pathOf } from './request-id.js';

/** Base of every problem `type` URI; the code is appended. It identifies the error and need not resolve. */
export const PROBLEM_TYPE_BASE = 'https://switchboard.dev/errors/';

/** The problem type URI of an error code. */
export function problemType(code: ErrorCode): string {
  return `${PROBLEM_TYPE_BASE}${code}`;
}

/**
 * Client errors thrown by body-parser/raw-body and the router: http-errors instances with a `status`, a
 * `type` and `expose: true` (http-errors sets `expose` only for 4xx).
 */
interface HttpLibraryError {
  status: number;
  type?: string;
  limit?: number;
}

function isHttpLibraryError(err: unknown): err is HttpLibraryError {
  return (
    typeof err === 'object' &&
    err !== null &&
    typeof (err as { status?: unknown }).status === 'number' &&
    (err as { expose?: unknown }).expose === true
  );
}

/**
 * Maps anything thrown into a {@link GatewayError}. Library messages are replaced by fixed details:
 * a JSON parse error message quotes the body, which belongs neither in a response nor in a log.
 */
function toGatewayError(err: unknown): GatewayError | undefined {
  if (isGatewayError(err)) return err;
  // The router's percent-decoding of a path parameter (`/v1/conversations/%E0%A4%A`); it marks the
  // error 400 but not as safe to show, so it would otherwise read as our own failure.
  if (err instanceof URIError) {
    return new GatewayError(
      'GW_ERR_BAD_REQUEST',
      'The request path has invalid percent-encoding',
      {},
      { cause: err },
    );
  }
  if (!isHttpLibraryError(err)) return undefined;
  switch (err.type) {
    case 'entity.parse.failed':
      return new GatewayError(
        'GW_ERR_INVALID_JSON',
        'The request body is not valid JSON',
        {},
        { cause: err },
      );
    case 'entity.too.large':
      return new GatewayError(
        'GW_ERR_PAYLOAD_TOO_LARGE',
        `The request body exceeds the limit of ${err.limit} bytes`,
        { limit: err.limit },
        { cause: err },
      );
    case 'charset.unsupported':
    case 'encoding.unsupported':
      return new GatewayError(
        'GW_ERR_UNSUPPORTED_MEDIA_TYPE',
        'Send the body as uncompressed UTF-8 application/json',
        {},
        { cause: err },
      );
    default:
      // Aborted uploads, size mismatches, undecodable path parameters: the client's fault, not ours.
      return new GatewayError('GW_ERR_BAD_REQUEST', 'The request could not be read', {}, { cause: err });
  }
}

/** Falls through to this when no route matched: a 404 with `GW_ERR_ROUTE_NOT_FOUND`. */
export function notFound(): RequestHandler {
  return function notFoundHandler(req, _res, next) {
    next(new GatewayError('GW_ERR_ROUTE_NOT_FOUND', `No route for ${req.method} ${pathOf(req.originalUrl)}`));
  };
}

/**
 * Renders every error as `application/problem+json` `{type, title, status, detail, code, requestId,
 * ...extra}`, sets `Retry-After` when the error carries `retryAfter` (seconds; every 503 has one), and logs it once:
 * 4xx at info (401/403 at warn), 5xx at error with the stack. Unknown errors become a bare 500.
 */
/** The Retry-After of a 503 whose cause named none. */
const DEFAULT_RETRY_AFTER_S = 1;

export function errorHandler(logger: Logger): ErrorRequestHandler {
  return function problemHandler(err: unknown, req, res, _next) {
    // Requests that never passed the request-id middleware still get a logger.
    const log = req.log ?? logger;
    const known = toGatewayError(err);
    const error =
      known ?? new GatewayError('GW_ERR_INTERNAL', 'An unexpected error occurred', {}, { cause: err });
    const fields = { code: error.code, status: error.status, reason: error.message };
    if (error.status >= 500) log.error({ ...fields, err: known ? error : err }, 'request failed');
    else if (error.status === 401 || error.status === 403) log.warn(fields, 'request refused');
    else log.info(fields, 'request rejected');

    if (res.headersSent) {
      // A streamed answer broke half-way: cut the connection so the client cannot take a truncated
      // body for a complete one.
      res.destroy();
      return;
    }
    const body: Record<string, unknown> = {
      type: problemType(error.code),
      title: error.title,
      status: error.status,
      detail: error.message,
      code: error.code,
      requestId: req.id,
    };
    for (const [key, value] of Object.entries(error.extra)) if (!(key in body)) body[key] = value;
    // Every 503 says when to come back; one that did not know is told a second.
    if (error.status === 503 && typeof body.retryAfter !== 'number') body.retryAfter = DEFAULT_RETRY_AFTER_S;
    const retryAfter = body.retryAfter;
    if (typeof retryAfter === 'number') res.setHeader('Retry-After', String(Math.ceil(retryAfter)));
    res.status(error.status).type('application/problem+json').json(body);
  };
}
