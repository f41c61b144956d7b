/**
 * Benchmark helpers. Every figure is reported as a ratio against a baseline measured in the same run,
 * because absolute numbers on shared machines mean little.
 */
import { execFile, fork } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
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
  /** Wall clock (ms since the epoch) of the load's first request, when the generator reports it. */
  startedAt?: number;
  /** Whether the requests built for the load ran out before its duration did. */
  exhausted?: boolean;
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
  /**
   * Sends every request twice, the copy one window of `connections` requests after the first, so
   * both are in flight at about the same time, as when a provider retries a webhook it timed out on.
   */
  twice?: boolean;
}

/** The most requests a second any load of this process has reached: how many to build next time. */
let fastestRps = 0;
/** Requests a second to build for when no load has run yet (`BENCH_LOAD_BUDGET`). */
const FIRST_BUDGET = Math.max(100, Number(process.env.BENCH_LOAD_BUDGET ?? 12000));
const WRK = process.env.BENCH_WRK ?? 'wrk';
const WRK_SCRIPT = fileURLToPath(new URL('./wrk-requests.lua', import.meta.url));

/** What the wrk script prints when it is done. */
interface WrkSummary {
  requests: number;
  durationUs: number;
  startedAt: number;
  stoppedAt: number;
  exhausted: boolean;
  connect: number;
  read: number;
  write: number;
  timeout: number;
  status: number;
  p50Us: number;
  p99Us: number;
}

/**
 * The order in which a load sends the requests it built: each once, or with `twice` each again one
 * window of `window` requests later.
 */
export function sendOrder(count: number, twice: boolean, window: number): number[] {
  if (!twice) return Array.from({ length: count }, (_, i) => i);
  const order: number[] = [];
  for (let from = 0; from < count; from += window) {
    const to = Math.min(count, from + window);
    for (let round = 0; round < 2; round++) for (let i = from; i < to; i++) order.push(i);
  }
  return order;
}

/** One raw HTTP/1.1 request, as wrk sends it: the file format of {@link writeRequests}. */
function rawRequest(
  method: string,
  target: URL,
  headers: Record<string, string>,
  built: { body: string; headers?: Record<string, string>; path?: string },
): Buffer {
  const body = Buffer.from(built.body);
  const all = { ...headers, ...built.headers };
  let head = `${method} ${built.path ?? `${target.pathname}${target.search}`} HTTP/1.1\r\nHost: ${target.host}\r\n`;
  for (const [name, value] of Object.entries(all)) head += `${name}: ${value}\r\n`;
  head += `Content-Length: ${body.length}\r\n\r\n`;
  return Buffer.concat([Buffer.from(head), body]);
}

/**
 * Builds `count` requests with `opts.request` and writes them, in {@link sendOrder}, to `path`: each
 * as its byte length on a line, then the raw request.
 */
export async function writeRequests(
  path: string,
  opts: Pick<LoadOptions, 'url' | 'method' | 'headers' | 'request' | 'twice' | 'connections'>,
  count: number,
): Promise<number> {
  const target = new URL(opts.url);
  const built = Array.from({ length: count }, () =>
    rawRequest(opts.method ?? 'POST', target, opts.headers ?? {}, opts.request()),
  );
  const order = sendOrder(count, opts.twice ?? false, opts.connections);
  const out = createWriteStream(path);
  for (const i of order) {
    const raw = built[i]!;
    // Both writes always: a full buffer after the length must not drop the request behind it.
    const lengthQueued = out.write(`${raw.length}\n`);
    const requestQueued = out.write(raw);
    if (!lengthQueued || !requestQueued) await once(out, 'drain');
  }
  out.end();
  await once(out, 'close');
  return order.length;
}

/**
 * A closed-loop load: `connections` keep-alive connections, each sending its next request as soon
 * as the last one is answered, for `durationS` seconds. The load generator is wrk, in a process of its
 * own, so neither the server measured nor its baseline shares an event loop (or pays for signatures
 * and encoding) with the client: `opts.request` builds every request before the clock starts, into a
 * file wrk sends in order, each request once. It builds twice as many as the fastest load so far
 * reached in the time; should the file still run out, wrk stops there and the rate is over the time
 * it ran. `startedAt` is the wall clock (ms) of the first request.
 */
export async function load(opts: LoadOptions): Promise<LoadResult> {
  const durationS = Math.max(1, Math.round(opts.durationS));
  const perSecond = Math.max(FIRST_BUDGET, 2 * fastestRps);
  const count = Math.ceil(perSecond * durationS * (opts.twice ? 0.5 : 1));
  const dir = await mkdtemp(join(tmpdir(), 'bench-load-'));
  try {
    const file = join(dir, 'requests');
    await writeRequests(file, opts, count);
    const stdout = await run(WRK, [
      '-t1',
      `-c${opts.connections}`,
      `-d${durationS}s`,
      '--timeout',
      '30s',
      '-s',
      WRK_SCRIPT,
      opts.url,
      '--',
      file,
    ]);
    const line = stdout.trim().split('\n').pop() ?? '';
    const s = JSON.parse(line) as WrkSummary;
    const seconds = s.exhausted ? (s.stoppedAt - s.startedAt) / 1000 : s.durationUs / 1e6;
    const rps = seconds > 0 ? s.requests / seconds : 0;
    fastestRps = Math.max(fastestRps, rps);
    return {
      rps,
      p50: s.p50Us / 1000,
      p99: s.p99Us / 1000,
      errors: s.connect + s.read + s.write + s.timeout,
      non2xx: s.status,
      total: s.requests,
      startedAt: s.startedAt,
      exhausted: s.exhausted,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Runs a command to its end; its standard output, or an error with its standard error. */
function run(command: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) {
        const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
        reject(
          new Error(
            missing
              ? `${command} is not installed: the bench's load generator is wrk (apt-get install wrk)`
              : `${command} failed: ${stderr || err.message}`,
          ),
        );
      } else resolve(stdout);
    });
  });
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

/** Makes `count` conversations through the API, each with one customer of its own; their ids. */
export function apiConversations(
  url: string,
  headers: Record<string, string>,
  count: number,
): Promise<string[]> {
  return Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const res = await fetch(`${url}/v1/conversations`, {
        method: 'POST',
        headers,
        body: JSON.stringify({ participants: [{ role: 'user', address: `customer-${i}@example.com` }] }),
      });
      return ((await res.json()) as { id: string }).id;
    }),
  );
}

/** Resolves once the store's queues are empty; throws after five minutes. */
export async function queueDrained(store: { pendingCount(): Promise<number> }): Promise<void> {
  for (let i = 0; (await store.pendingCount()) > 0; i++) {
    if (i > 3_000) throw new Error('the queue did not drain');
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * End to end on the API: `POST /v1/messages` into `conversations` from `connections` for `durationS`,
 * then until the store's queues are empty. `answered()` counts what the bot has seen; the rate is that
 * over the whole time, load and drain.
 */
export async function apiEndToEnd(opts: {
  url: string;
  headers: Record<string, string>;
  conversations: readonly string[];
  prefix: string;
  store: { pendingCount(): Promise<number> };
  answered(): number;
  connections: number;
  durationS: number;
}): Promise<{ rps: number; errors: number }> {
  let n = 0;
  const start = performance.now();
  const result = await load({
    url: `${opts.url}/v1/messages`,
    headers: opts.headers,
    request: () => ({ body: messageBody(opts.conversations, `${opts.prefix}-`, n++) }),
    connections: opts.connections,
    durationS: opts.durationS,
  });
  await queueDrained(opts.store);
  return {
    rps: opts.answered() / ((performance.now() - start) / 1000),
    errors: result.errors + result.non2xx,
  };
}

/** An open-loop load of API message bodies, described in data so it can cross to a child process. */
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
 * {@link paced} with the load generator in a child process. In the servers' own event loop its timers
 * would wait behind the server's work and the server's replies behind its bursts of requests, a
 * coupling no real caller has, which inflates the tail of a server that waits on I/O far more than
 * that of one that answers at once; a process of its own (not a worker thread) also keeps its
 * garbage collection and its share of the heap out of the measured process.
 */
export function pacedOffThread(spec: MessageLoad): Promise<LoadResult> {
  return new Promise((resolve, reject) => {
    const child = fork(fileURLToPath(new URL('./paced-worker.js', import.meta.url)), [], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    let result: LoadResult | undefined;
    child.once('message', (message: LoadResult) => {
      result = message;
    });
    child.once('error', reject);
    child.once('exit', (code) => {
      if (result) resolve(result);
      else reject(new Error(`the load process exited with code ${code} and no result`));
    });
    child.send(spec);
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
