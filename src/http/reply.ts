/**
 * @module A JSON answer written straight to the response: what Express's `res.status(s).json(body)`
 * sends for a POST (the same `Content-Type` and `Content-Length`, no ETag, which the app turns off), without
 * its per-call header and freshness work. For the hottest answers only (the accept's 202); headers
 * go through `setHeader`, so middleware that records a response (idempotency) sees them.
 */
import type { Response } from 'express';

export function replyJson(res: Response, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.statusCode = status;
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(text));
  res.end(text);
}
