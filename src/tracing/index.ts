/**
 * @module OpenTelemetry tracing (SPEC §12). Off unless `OTEL_EXPORTER_OTLP_ENDPOINT` is set; then
 * {@link initTracing} registers the SDK's tracer provider (OTLP/HTTP with JSON bodies, a batch span
 * processor, W3C trace context) and every hook below starts real spans.
 *
 * One trace per inbound message: `webhook <channel>` (server) > `verify`, `accept` > `queue.wait`,
 * `process` > `bot.call`, `send <channel>`. The accept's context is stored with the message
 * (`traceparent`), so whichever process claims it continues the same trace; the send's context is
 * stored beside the provider's message id, so the status callback's span links to it.
 *
 * Off costs nothing measurable: the SDK is not even loaded, and each hook site is one null check
 * (`active === null`) before the code it wraps runs as it would without tracing.
 */
import {
  type Attributes,
  type Context,
  context,
  type Link,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  type SpanOptions,
  SpanStatusCode,
  type Tracer,
  trace,
} from '@opentelemetry/api';
import type { Logger } from 'pino';

export { SpanKind };

/** The tracer while tracing is on; null when it is off (the hooks' one check). */
let active: Tracer | null = null;

/** True while spans are recorded and exported. */
export function tracingOn(): boolean {
  return active !== null;
}

export interface Tracing {
  /** Where spans go (the OTLP/HTTP traces URL). */
  readonly url: string;
  /** Ends tracing: exports the spans still buffered, then turns every hook back into a no-op. */
  shutdown(): Promise<void>;
}

/** The settings tracing reads; the SDK reads the other `OTEL_*` variables from the environment itself. */
export interface TracingConfig {
  OTEL_EXPORTER_OTLP_ENDPOINT?: string | undefined;
  OTEL_SERVICE_NAME?: string | undefined;
}

/** The OTLP/HTTP traces URL for an `OTEL_EXPORTER_OTLP_ENDPOINT` (the spec's `/v1/traces` suffix). */
export function tracesUrl(endpoint: string): string {
  return `${endpoint.replace(/\/+$/, '')}/v1/traces`;
}

/**
 * Starts tracing when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (null otherwise) and logs one line saying
 * where spans go. The SDK packages are loaded only here, so a gateway without tracing never loads them.
 */
export async function initTracing(config: TracingConfig, logger: Logger): Promise<Tracing | null> {
  const endpoint = config.OTEL_EXPORTER_OTLP_ENDPOINT;
  if (!endpoint) return null;
  // The OpenTelemetry API has one global tracer provider per process: a second gateway in the same
  // process (tests, embedding) shares the first one's tracing rather than replacing it.
  if (active !== null) {
    logger.warn('tracing is already on in this process; this gateway uses the same tracer');
    return null;
  }
  const [{ NodeTracerProvider, BatchSpanProcessor }, { OTLPTraceExporter }, resources, semconv] =
    await Promise.all([
      import('@opentelemetry/sdk-trace-node'),
      import('@opentelemetry/exporter-trace-otlp-http'),
      import('@opentelemetry/resources'),
      import('@opentelemetry/semantic-conventions'),
    ]);
  // The traces endpoint wins when set (the SDK's own rule); otherwise the spec's suffix on the base.
  const url = process.env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || tracesUrl(endpoint);
  // OTEL_EXPORTER_OTLP_HEADERS, _TIMEOUT and _COMPRESSION are read by the exporter itself.
  const exporter = new OTLPTraceExporter({ url });
  // service.name: OTEL_SERVICE_NAME, else `service.name` in OTEL_RESOURCE_ATTRIBUTES, else switchboard.
  const detected = resources.detectResources({ detectors: [resources.envDetector] });
  const resource = resources
    .defaultResource()
    .merge(resources.resourceFromAttributes({ [semconv.ATTR_SERVICE_NAME]: 'switchboard' }))
    .merge(detected)
    .merge(
      config.OTEL_SERVICE_NAME
        ? resources.resourceFromAttributes({ [semconv.ATTR_SERVICE_NAME]: config.OTEL_SERVICE_NAME })
        : resources.emptyResource(),
    );
  // OTEL_TRACES_SAMPLER(_ARG), OTEL_BSP_* and the span limits are read by the provider itself.
  const provider = new NodeTracerProvider({
    resource,
    spanProcessors: [new BatchSpanProcessor(exporter)],
  });
  provider.register();
  active = trace.getTracer('switchboard');
  const service = resource.attributes[semconv.ATTR_SERVICE_NAME];
  // Credentials in the URL are never logged (headers, OTEL_EXPORTER_OTLP_HEADERS, are not either).
  const shown = url.replace(/\/\/[^@/\s]*@/, '//***@');
  logger.info(
    { url: shown, service },
    `tracing on: spans go to ${shown} over OTLP/HTTP as service ${String(service)}`,
  );
  let stopped: Promise<void> | null = null;
  return {
    url,
    shutdown() {
      stopped ??= (async () => {
        active = null;
        try {
          await provider.shutdown();
        } catch (err) {
          logger.warn({ err }, 'tracing: the last spans could not be exported');
        }
        trace.disable();
        context.disable();
        propagation.disable();
      })();
      return stopped;
    },
  };
}

/** What a span starts with, besides its name. */
export interface StartOptions extends SpanOptions {
  /** The parent; the active context when absent. */
  parent?: Context;
}

/**
 * Runs `fn` inside a new span (active for everything `fn` awaits), ended when `fn` settles; a throw
 * marks the span as an error. With tracing off, `fn` runs as is and gets no span.
 */
export function inSpan<T>(
  name: string,
  options: StartOptions,
  fn: (span: Span | undefined) => Promise<T>,
): Promise<T> {
  const tracer = active;
  if (tracer === null) return fn(undefined);
  const parent = options.parent ?? context.active();
  const span = tracer.startSpan(name, options, parent);
  return context.with(trace.setSpan(parent, span), async () => {
    try {
      return await fn(span);
    } catch (err) {
      failed(span, err);
      throw err;
    } finally {
      span.end();
    }
  });
}

/** {@link inSpan} for synchronous work (a signature check). */
export function inSpanSync<T>(name: string, options: StartOptions, fn: (span: Span | undefined) => T): T {
  const tracer = active;
  if (tracer === null) return fn(undefined);
  const parent = options.parent ?? context.active();
  const span = tracer.startSpan(name, options, parent);
  try {
    return context.with(trace.setSpan(parent, span), () => fn(span));
  } catch (err) {
    failed(span, err);
    throw err;
  } finally {
    span.end();
  }
}

/**
 * A provider signature check in a `verify` span: the verification mode and the outcome (`ok` or the
 * refusal reason) as attributes. Callers check {@link tracingOn} first, so an untraced check makes
 * no closure.
 */
export function tracedCheck<R extends { ok: boolean }>(mode: string, check: () => R): R {
  return inSpanSync('verify', { attributes: { 'switchboard.verify.mode': mode } }, (span) => {
    const verified = check();
    const reason = (verified as { reason?: unknown }).reason;
    span?.setAttribute('switchboard.verify.outcome', verified.ok ? 'ok' : String(reason ?? 'failed'));
    return verified;
  });
}

/** A span that is over as soon as it starts: for a stretch that is measured afterwards (queue wait). */
export function recordSpan(name: string, options: StartOptions & { startTime: number }, end?: number): void {
  const tracer = active;
  if (tracer === null) return;
  tracer.startSpan(name, options, options.parent ?? context.active()).end(end);
}

function failed(span: Span, err: unknown): void {
  span.recordException(err instanceof Error ? err : String(err));
  span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/** The W3C `traceparent` of the active span; undefined when tracing is off or nothing is recorded. */
export function currentTraceparent(): string | undefined {
  if (active === null) return undefined;
  const span = trace.getActiveSpan();
  return span?.isRecording() ? traceparentOf(span) : undefined;
}

/** The W3C `traceparent` header value of a span. */
export function traceparentOf(span: Span): string {
  const { traceId, spanId, traceFlags } = span.spanContext();
  return `00-${traceId}-${spanId}-${traceFlags.toString(16).padStart(2, '0')}`;
}

/** The context a stored `traceparent` names (its span as a remote parent); the root when it is not one. */
export function contextOf(traceparent: string | undefined): Context {
  if (!traceparent || !TRACEPARENT.test(traceparent)) return ROOT_CONTEXT;
  return propagation.extract(ROOT_CONTEXT, { traceparent });
}

/** A span link to the span a stored `traceparent` names; undefined when it is not one. */
export function linkTo(traceparent: string | undefined, attributes?: Attributes): Link | undefined {
  const m = traceparent ? TRACEPARENT.exec(traceparent) : null;
  if (!m) return undefined;
  return {
    context: { traceId: m[1]!, spanId: m[2]!, traceFlags: Number.parseInt(m[3]!, 16), isRemote: true },
    ...(attributes ? { attributes } : {}),
  };
}

/** Links the active span (a status callback's webhook span) to a stored span; no-op when off. */
export function linkActiveSpan(traceparent: string | undefined, attributes?: Attributes): void {
  if (active === null) return;
  const link = linkTo(traceparent, attributes);
  const span = trace.getActiveSpan();
  if (link && span?.isRecording()) span.addLink(link);
}

/** Adds `traceparent` (and `tracestate`) of the active span to outgoing request headers; no-op when off. */
export function injectTraceContext(headers: Record<string, string>): void {
  if (active === null) return;
  propagation.inject(context.active(), headers);
}

/** Sets attributes on the active span; no-op when off. */
export function annotate(attributes: Attributes): void {
  if (active === null) return;
  trace.getActiveSpan()?.setAttributes(attributes);
}

/** A `traceparent` in a serialised event (its message's), for the outbound webhook header. */
export function traceparentIn(body: string): string | undefined {
  if (active === null) return undefined;
  return /"traceparent":"(00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2})"/.exec(body)?.[1];
}
