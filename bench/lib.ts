/**
 * Benchmark helpers. Every figure is reported as a ratio against a baseline measured in the same run,
 * because absolute numbers on shared machines mean little.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Worker } from 'node:worker_threads';
import autocannon from 'autocannon';
import express from 'express';
import * as hdr from 'hdr-histogram-js';
import { Pool } from 'undici';

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
  /** The lowest and highest figure over the rounds (ratios, or values for latency rows), when the row is the median of several. */
  spread?: [number, number];
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
export async function startBare(): Promise<{ url: string; server: Server; close(): Promise<void> }> {
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
    server,
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

/** Rounds of a paired comparison: `BENCH_ROUNDS` (default 5). */
export const ROUNDS = Math.max(1, Number(process.env.BENCH_ROUNDS ?? 5));

interface Round<B, T> {
  subject: T;
  baseline: B;
  ratio: number;
}

export interface Paired<B extends { rps: number }, T extends { rps: number }> {
  /** The round whose ratio is the median; its own figures, so value / baseline = ratio. */
  median: Round<B, T>;
  spread: [number, number];
  rounds: Round<B, T>[];
}

/**
 * Runs baseline and subject alternately, `rounds` times, and keeps the round with the median ratio.
 * A shared machine's speed drifts over seconds; pairing each subject run with a baseline run next to
 * it, and taking the median, keeps one unlucky run from deciding the figure in either direction.
 */
export async function paired<B extends { rps: number }, T extends { rps: number }>(
  baseline: () => Promise<B>,
  subject: () => Promise<T>,
  rounds = ROUNDS,
): Promise<Paired<B, T>> {
  const results: Round<B, T>[] = [];
  for (let i = 0; i < rounds; i++) {
    const b = await baseline();
    const s = await subject();
    results.push({ subject: s, baseline: b, ratio: b.rps > 0 ? s.rps / b.rps : 0 });
  }
  const sorted = [...results].sort((x, y) => x.ratio - y.ratio);
  return {
    median: sorted[Math.floor((sorted.length - 1) / 2)]!,
    spread: [sorted[0]!.ratio, sorted[sorted.length - 1]!.ratio],
    rounds: results,
  };
}

/** A ratio row from a paired comparison: the median round's figures, with the spread of all rounds. */
export function pairedRow(
  scenario: string,
  metric: string,
  result: Paired<{ rps: number }, { rps: number }>,
  minRatio?: number,
): BenchRow {
  const row = ratioRow(scenario, metric, result.median.subject.rps, result.median.baseline.rps, minRatio);
  return result.rounds.length > 1 ? { ...row, spread: result.spread } : row;
}

/** A latency histogram: milliseconds in and out, kept in microseconds up to a minute (three digits). */
function latencies() {
  const histogram = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000 });
  return {
    record: (ms: number) => histogram.recordValue(Math.max(1, Math.round(ms * 1000))),
    percentile: (p: number) => histogram.getValueAtPercentile(p) / 1000,
    destroy: () => histogram.destroy(),
  };
}

/** Requests {@link paced} sends before it records: its first second. */
export function pacedWarmup(rate: number): number {
  return Math.round(rate);
}

/**
 * An open-loop load at a fixed rate over `connections` keep-alive connections: request i is due at
 * start + i / rate whether or not earlier ones were answered, and its latency counts from when it was
 * due, so time spent queued behind a slow response is not hidden (no coordinated omission).
 * autocannon's own rate limit sends each second's quota in a burst at the top of the second, which
 * measures the burst rather than the server, hence this. The first second warms up connections and
 * code paths and is not recorded.
 */
export async function paced(opts: Omit<LoadOptions, 'method'> & { rate: number }): Promise<LoadResult> {
  const target = new URL(opts.url);
  const pool = new Pool(target.origin, { connections: opts.connections, pipelining: 1 });
  const histogram = latencies();
  const warmup = pacedWarmup(opts.rate);
  const total = warmup + Math.round(opts.rate * opts.durationS);
  const interval = 1000 / opts.rate;
  let errors = 0;
  let non2xx = 0;
  let done = 0;
  const pending = new Set<Promise<void>>();
  const fire = (due: number, recorded: boolean) => {
    const built = opts.request();
    const sent = pool
      .request({
        path: built.path ?? `${target.pathname}${target.search}`,
        method: 'POST',
        headers: { ...opts.headers, ...built.headers },
        body: built.body,
      })
      .then(async (res) => {
        await res.body.dump();
        if (res.statusCode < 200 || res.statusCode > 299) non2xx += 1;
        if (!recorded) return;
        histogram.record(performance.now() - due);
        done += 1;
      })
      .catch(() => {
        errors += 1;
      })
      .finally(() => pending.delete(sent));
    pending.add(sent);
  };
  const start = performance.now();
  let i = 0;
  while (i < total) {
    const now = performance.now();
    while (i < total && start + i * interval <= now) {
      fire(start + i * interval, i >= warmup);
      i += 1;
    }
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  await Promise.all(pending);
  const elapsed = (performance.now() - start) / 1000 - warmup / opts.rate;
  await pool.close();
  const result = {
    rps: done / elapsed,
    p50: histogram.percentile(50),
    p99: histogram.percentile(99),
    errors,
    non2xx,
    total: done,
  };
  histogram.destroy();
  return result;
}

/**
 * Runs `work` while timing, inside the server, every request `server` handles: from the request
 * event to the response's last byte handed to the socket. Set beside the latency the client saw, it
 * tells the server's own share from the time spent in the load generator, the event loop's queue and
 * the machine. The first `skip` requests are not timed: {@link paced} does not record its warm-up
 * second either ({@link pacedWarmup}), and both figures must cover the same requests.
 */
export async function withServerTiming<T>(
  server: Server,
  work: () => Promise<T>,
  skip = 0,
): Promise<{ result: T; serverP50: number; serverP99: number }> {
  const histogram = latencies();
  let seen = 0;
  const onRequest = (_req: IncomingMessage, res: ServerResponse) => {
    if (seen++ < skip) return;
    const start = performance.now();
    res.once('finish', () => {
      histogram.record(performance.now() - start);
    });
  };
  server.prependListener('request', onRequest);
  try {
    const result = await work();
    return {
      result,
      serverP50: histogram.percentile(50),
      serverP99: histogram.percentile(99),
    };
  } finally {
    server.off('request', onRequest);
    histogram.destroy();
  }
}

/**
 * The body of the `i`-th `POST /v1/messages` of a load: the conversations in turn, and a
 * `clientMessageId` of `idPrefix` and `i`, so a load repeats no message unless it means to.
 */
export function messageBody(conversations: readonly string[], idPrefix: string, i: number): string {
  return JSON.stringify({
    conversationId: conversations[i % conversations.length],
    text: `message ${i}`,
    clientMessageId: `${idPrefix}${i}`,
    wait: 0,
  });
}

/** An open-loop load of API message bodies, described in data so it can cross to a worker thread. */
export interface MessageLoad {
  url: string;
  headers: Record<string, string>;
  conversations: string[];
  /** Prefix of each body's `clientMessageId`; unique per run, so no message repeats. */
  idPrefix: string;
  rate: number;
  connections: number;
  durationS: number;
}

/**
 * {@link paced} with the load generator on a worker thread. In the servers' own event loop its timers
 * would wait behind the server's work and the server's replies behind its bursts of requests, a
 * coupling no real caller has, which inflates the tail of a server that waits on I/O far more than
 * that of one that answers at once.
 */
export function pacedOffThread(spec: MessageLoad): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./paced-worker.js', import.meta.url), { workerData: spec });
    worker.once('message', (result: LoadResult) => resolve(result));
    worker.once('error', reject);
    worker.once('exit', (code) => {
      if (code !== 0) reject(new Error(`the load worker exited with code ${code}`));
    });
  });
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
