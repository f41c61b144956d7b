/**
 * The tracing helpers (SPEC §12) without a collector: with tracing off every hook is a pass-through
 * that makes no span; the stored `traceparent` is parsed strictly, so a malformed one (from a message
 * or a mapping written by anything) starts no bogus trace and links to nothing.
 */
import { ROOT_CONTEXT, trace } from '@opentelemetry/api';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import {
  contextOf,
  currentTraceparent,
  initTracing,
  injectTraceContext,
  inSpan,
  inSpanSync,
  linkTo,
  traceparentIn,
  tracesUrl,
  tracingOn,
} from '../../src/tracing/index.js';

const TP = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';

describe('tracing off', () => {
  it('starts nothing without OTEL_EXPORTER_OTLP_ENDPOINT, and every hook passes through', async () => {
    expect(await initTracing({}, pino({ level: 'silent' }))).toBeNull();
    expect(tracingOn()).toBe(false);
    expect(await inSpan('accept', {}, async (span) => span)).toBeUndefined();
    expect(inSpanSync('verify', {}, (span) => span)).toBeUndefined();
    expect(currentTraceparent()).toBeUndefined();
    const headers: Record<string, string> = {};
    injectTraceContext(headers);
    expect(headers).toEqual({});
    expect(traceparentIn(`{"message":{"traceparent":"${TP}"}}`)).toBeUndefined();
  });
});

describe('trace context helpers', () => {
  it("puts the spec's /v1/traces after the endpoint, one slash", () => {
    expect(tracesUrl('http://collector:4318')).toBe('http://collector:4318/v1/traces');
    expect(tracesUrl('http://collector:4318/')).toBe('http://collector:4318/v1/traces');
    expect(tracesUrl('https://otlp.example.com/prefix')).toBe('https://otlp.example.com/prefix/v1/traces');
  });

  it('links to the span a traceparent names, and to nothing for anything else', () => {
    expect(linkTo(TP, { a: 1 })).toEqual({
      context: {
        traceId: '0af7651916cd43dd8448eb211c80319c',
        spanId: 'b7ad6b7169203331',
        traceFlags: 1,
        isRemote: true,
      },
      attributes: { a: 1 },
    });
    for (const bad of [undefined, '', 'garbage', `${TP} `, TP.toUpperCase(), `01${TP.slice(2)}`]) {
      expect(linkTo(bad)).toBeUndefined();
    }
  });

  it('reads a malformed stored traceparent as no parent at all', () => {
    expect(contextOf(undefined)).toBe(ROOT_CONTEXT);
    expect(contextOf('00-nothex-b7ad6b7169203331-01')).toBe(ROOT_CONTEXT);
    expect(trace.getSpanContext(contextOf('00-nothex-b7ad6b7169203331-01'))).toBeUndefined();
  });
});
