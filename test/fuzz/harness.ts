/**
 * What the fuzz suites share: fixed seeds and time budgets (bounded and repeatable: a failure names
 * its seed and path, and the same run finds it again), a raw HTTP client that sends exactly the bytes
 * it is given, and the checks made after every suite: no error-level log line, the gateway healthy.
 */
import { request } from 'node:http';
import { expect } from 'vitest';
import type { LogCapture } from '../helpers/logs.js';

/**
 * fast-check parameters for one property: a fixed seed, and a time budget after which the run stops
 * (not a failure), so a slow machine runs fewer cases rather than timing out.
 */
export function fuzzParams(seed: number, budgetMs = 3_000, numRuns = 1_000) {
  return { seed, numRuns, interruptAfterTimeLimit: budgetMs, markInterruptAsFailure: false } as const;
}

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export interface RawRequest {
  method: string;
  /** Sent as it is: no normalisation, no percent-encoding. */
  path: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
}

/** One request over a fresh connection; rejects only when no HTTP answer came at all. */
export function rawRequest(base: string, req: RawRequest, timeoutMs = 10_000): Promise<RawResponse> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const r = request(
      {
        host: url.hostname,
        port: url.port,
        method: req.method,
        path: req.path,
        headers: req.headers,
        agent: false,
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString('utf8'),
          }),
        );
        res.on('error', reject);
      },
    );
    r.on('timeout', () =>
      r.destroy(new Error(`no answer within ${timeoutMs} ms: ${req.method} ${req.path}`)),
    );
    r.on('error', reject);
    r.end(req.body);
  });
}

/** A failure message that names the request, so a counterexample reads at a glance. */
export function describeRequest(req: RawRequest): string {
  const body = req.body === undefined ? '' : ` body=${JSON.stringify(String(req.body).slice(0, 200))}`;
  return `${req.method} ${req.path} headers=${JSON.stringify(req.headers ?? {})}${body}`;
}

/** Lines logged at error level or above: none is expected from anything a client sends. */
export function errorLines(logs: LogCapture): Array<Record<string, unknown>> {
  return logs.lines.filter((l) => typeof l.level === 'number' && l.level >= 50);
}

/** The gateway still answers its health check and its API after the fuzzing. */
export async function expectHealthy(base: string, apiKey: string): Promise<void> {
  expect((await rawRequest(base, { method: 'GET', path: '/healthz' })).status).toBe(200);
  const list = await rawRequest(base, {
    method: 'GET',
    path: '/v1/conversations?take=1',
    headers: { authorization: `Bearer ${apiKey}` },
  });
  expect(list.status).toBe(200);
}
