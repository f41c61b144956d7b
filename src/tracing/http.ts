/**
 * @module The `webhook <channel>` server span around each provider webhook (SPEC §12): mounted under
 * `/webhooks` only while tracing is on, so a gateway without tracing runs no code of it at all.
 */
import { context, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import {
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_HTTP_ROUTE,
  ATTR_URL_PATH,
} from '@opentelemetry/semantic-conventions';
import type { RequestHandler } from 'express';

/**
 * Starts a server span named after the channel (the path's first segment; span names stay
 * low-cardinality), continuing a `traceparent` the caller sent, and ends it when the answer is out.
 */
export function webhookSpans(channels: ReadonlySet<string>): RequestHandler {
  const tracer = trace.getTracer('switchboard');
  return (req, res, next) => {
    const first = req.path.split('/')[1] ?? '';
    const channel = channels.has(first) ? first : 'unknown';
    const parent = propagation.extract(ROOT_CONTEXT, req.headers);
    const route = `/webhooks${req.path}`;
    const span = tracer.startSpan(
      `webhook ${channel}`,
      {
        kind: SpanKind.SERVER,
        attributes: {
          [ATTR_HTTP_REQUEST_METHOD]: req.method,
          [ATTR_URL_PATH]: route,
          [ATTR_HTTP_ROUTE]: channels.has(first) ? route : '/webhooks',
          'switchboard.channel': channel,
        },
      },
      parent,
    );
    let ended = false;
    const end = () => {
      if (ended) return;
      ended = true;
      span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, res.statusCode);
      if (res.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
      span.end();
    };
    res.once('finish', end);
    res.once('close', end);
    context.with(trace.setSpan(parent, span), next);
  };
}
