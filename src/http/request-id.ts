/**
 * @module Request ids and the access log. Every request gets an id (a caller's `X-Request-Id` is kept
 * only when it is short and safe to log), a child logger bound to it, and one log line when it ends.
 */
import { randomUUID } from 'node:crypto';
import type { Request, RequestHandler } from 'express';
import type { Logger } from 'pino';

/** The header read from callers and always set on responses. */
export const REQUEST_ID_HEADER = 'X-Request-Id';

// Caller-supplied ids end up in logs and response headers: anything longer or with other characters
// could forge log lines or smuggle markup, so it is replaced rather than escaped.
const SAFE_ID = /^[A-Za-z0-9._-]{1,64}$/;

/** The path of a URL without its query string (queries may carry data that has no place in logs). */
export function pathOf(url: string): string {
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}

/**
 * Gives every request of `app` a `req.log`: a child logger bound to the request's id, made on first
 * use. Most requests log nothing but their access line, which needs no child of its own; a pino child
 * serializes (and redacts) its bindings when made, so making one per request was a cost on every call.
 * The getter sits on the app's request prototype, as Express's own `req.query` does; a request that
 * never passed {@link requestId} gets the app's logger itself.
 */
export function defineRequestLogger(requestPrototype: Request, logger: Logger): void {
  Object.defineProperty(requestPrototype, 'log', {
    configurable: true,
    get(this: Request): Logger {
      if (this.id === undefined) return logger;
      const log = logger.child({ reqId: this.id });
      Object.defineProperty(this, 'log', { value: log, configurable: true, writable: true });
      return log;
    },
  });
}

/**
 * Assigns `req.id`, sets `X-Request-Id` on the response and logs one line per request (method, path
 * without query, status, duration, id). Headers and bodies are never logged.
 */
export function requestId(logger: Logger): RequestHandler {
  return function requestIdMiddleware(req, res, next) {
    const inbound = req.get(REQUEST_ID_HEADER);
    const id = inbound !== undefined && SAFE_ID.test(inbound) ? inbound : randomUUID();
    req.id = id;
    res.setHeader(REQUEST_ID_HEADER, id);
    // The access line is info: below that level (LOG_LEVEL=warn, silent) nothing would be written, so
    // the listener, its closure and the clock reading are not made. Asked per request, so a level
    // changed at run time counts from the next request on.
    if (!logger.isLevelEnabled('info')) {
      next();
      return;
    }
    const started = process.hrtime.bigint();
    // `close` also fires for aborted requests, which `finish` would miss; `once` keeps it to one line.
    res.once('close', () => {
      logger.info(
        {
          reqId: id,
          method: req.method,
          path: pathOf(req.originalUrl),
          status: res.statusCode,
          ms: Math.round(Number(process.hrtime.bigint() - started) / 1e4) / 100,
          aborted: !res.writableFinished || undefined,
        },
        'request',
      );
    });
    next();
  };
}
