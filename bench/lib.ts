/**
 * Benchmark helpers. Every figure is reported as a ratio against a baseline measured in the same run,
 * because absolute numbers on shared machines mean little.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import autocannon from 'autocannon';
import express from 'express';

export interface BenchRow {
  scenario: string;
  /** What was measured, e.g. `req/s`. */
  metric: string;
  value: number;
  /** The same metric for the baseline, when the row is a ratio. */
  baseline?: number;
  /** value / baseline (or a count for correctness rows). */
  ratio?: number;
  /** Human-readable target, e.g. `>= 0.8x`. */
  target?: string;
  /** Whether the target was met; undefined when the row has no target. */
  ok?: boolean;
}

export interface LoadResult {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  non2xx: number;
  total: number;
}

/** A bare Express 5 endpoint that parses the same kind of body: the baseline for ingest figures. */
export async function startBare(): Promise<{ url: string; close(): Promise<void> }> {
  const app = express();
  app.use(express.json({ limit: '1mb' }));
  app.use(express.urlencoded({ extended: false, limit: '1mb' }));
  app.post('/bare', (req, res) => {
    res.status(200).json({ ok: true, size: req.body ? Object.keys(req.body).length : 0 });
  });
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

export interface LoadOptions {
  url: string;
  method?: 'POST' | 'GET';
  headers?: Record<string, string>;
  /** Builds each request's body and extra headers (unique ids, fresh signatures). */
  request: () => { body: string; headers?: Record<string, string>; path?: string };
  connections: number;
  durationS: number;
}

export async function load(opts: LoadOptions): Promise<LoadResult> {
  const result = await autocannon({
    url: opts.url,
    connections: opts.connections,
    duration: opts.durationS,
    requests: [
      {
        method: opts.method ?? 'POST',
        setupRequest(req) {
          const built = opts.request();
          return {
            ...req,
            ...(built.path ? { path: built.path } : {}),
            body: built.body,
            headers: { ...opts.headers, ...built.headers },
          };
        },
      },
    ],
  });
  return {
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
    total: result.requests.total,
  };
}

export function ratioRow(
  scenario: string,
  metric: string,
  value: number,
  baseline: number,
  minRatio?: number,
): BenchRow {
  const ratio = baseline > 0 ? value / baseline : 0;
  return {
    scenario,
    metric,
    value,
    baseline,
    ratio,
    ...(minRatio !== undefined ? { target: `>= ${minRatio}x`, ok: ratio >= minRatio } : {}),
  };
}

export function countRow(scenario: string, metric: string, value: number, max = 0): BenchRow {
  return { scenario, metric, value, target: `<= ${max}`, ok: value <= max };
}
