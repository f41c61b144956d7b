/**
 * Tracing benchmarks (SPEC §12). Signed Twilio webhooks ingested (the webhook's whole ack path,
 * engine off) by this build with tracing off, against the same path built from the code before
 * tracing existed, in the same run: tracing off must cost nothing measurable (>= 0.97x). "Before" is
 * a real build of an earlier revision, made by `scripts/bench-before.sh` and named by
 * `BENCH_BEFORE_DIR`; without it that row is left out. A control row pairs this build with itself
 * the same way, to show what pairing alone does to a ratio. A last row, for context, prices tracing on
 * (every span exported to a local OTLP/HTTP receiver) against off.
 */
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import twilio from 'twilio';
import { ADAPTERS } from '../../adapters/index.js';
import { loadConfig } from '../../config/load.js';
import { createGateway } from '../../src/gateway.js';
import { createLogger } from '../../src/logger.js';
import {
  ACCOUNT_SID,
  AUTH_TOKEN,
  encodeForm,
  FakeTwilioApi,
  smsParams,
} from '../../test/fakes/twilio-api.js';
import { OtlpReceiver } from '../../test/helpers/otlp-receiver.js';
import { type BenchRow, countRow, type LoadResult, load, paired, pairedRow } from '../lib.js';

const PUBLIC_URL = 'https://chat.example.com';
const PATH = '/webhooks/twilio';
const CONNECTIONS = 50;
const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 5);
const CUSTOMERS = 100;
const HEADERS = { 'content-type': 'application/x-www-form-urlencoded; charset=UTF-8' };

/** Signed inbound SMS requests: unique MessageSid per run (by prefix), one of CUSTOMERS senders. */
function webhookRequests(prefix: number) {
  let n = 0;
  const url = `${PUBLIC_URL}${PATH}`;
  return () => {
    const i = n++;
    const params = smsParams({
      MessageSid: `SM${prefix.toString(16).padStart(4, '0')}${i.toString(16).padStart(28, '0')}`,
      From: `+1415555${String(i % CUSTOMERS).padStart(4, '0')}`,
      Body: `bench message ${i}`,
    });
    return {
      body: encodeForm(params),
      headers: { 'x-twilio-signature': twilio.getExpectedTwilioSignature(AUTH_TOKEN, url, params) },
    };
  };
}

/** What a build offers to start a gateway: this one's modules, or an earlier build's. */
interface Build {
  ADAPTERS: typeof ADAPTERS;
  loadConfig: typeof loadConfig;
  createGateway: typeof createGateway;
  createLogger: typeof createLogger;
}

const THIS_BUILD: Build = { ADAPTERS, loadConfig, createGateway, createLogger };

/** The compiled modules of an earlier revision (see scripts/bench-before.sh). */
async function buildAt(dir: string): Promise<Build> {
  const mod = (path: string) => import(pathToFileURL(join(dir, 'dist-bench', path)).href);
  const [adapters, config, gateway, logger] = await Promise.all([
    mod('adapters/index.js'),
    mod('config/load.js'),
    mod('src/gateway.js'),
    mod('src/logger.js'),
  ]);
  return {
    ADAPTERS: adapters.ADAPTERS,
    loadConfig: config.loadConfig,
    createGateway: gateway.createGateway,
    createLogger: logger.createLogger,
  };
}

let runs = 0;

/** One round on a gateway of its own: start, load for DURATION_S, stop. */
async function ingestRound(
  build: Build,
  apiUrl: string,
  redisUrl: string | undefined,
  extra: Record<string, string> = {},
): Promise<LoadResult> {
  const run = runs++;
  const config = build.loadConfig(
    {
      ...(redisUrl ? { REDIS_URL: redisUrl, REDIS_KEY_PREFIX: `bench-tracing-${run}` } : {}),
      PUBLIC_URL,
      API_KEYS: 'bench-api-key-0123456789abcdef',
      TWILIO_ACCOUNT_SID: ACCOUNT_SID,
      TWILIO_AUTH_TOKEN: AUTH_TOKEN,
      TWILIO_API_URL: apiUrl,
      QUEUE_MAX_PENDING: '10000000',
      LOG_LEVEL: 'silent',
      RATE_LIMIT_PER_MIN: '0',
      ...extra,
    },
    build.ADAPTERS,
  );
  const gw = await build.createGateway(config, build.createLogger('silent'), { startEngine: false });
  try {
    const url = await gw.start(0, '127.0.0.1');
    return await load({
      url: `${url}${PATH}`,
      headers: HEADERS,
      request: webhookRequests(run),
      connections: CONNECTIONS,
      durationS: DURATION_S,
    });
  } finally {
    await gw.stop();
  }
}

export async function run(redisUrl?: string): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const fake = await FakeTwilioApi.start();
  const receiver = await OtlpReceiver.start();
  const failures: LoadResult[] = [];
  const counted = (r: LoadResult) => {
    failures.push(r);
    return r;
  };
  try {
    const beforeDir = process.env.BENCH_BEFORE_DIR;
    if (beforeDir) {
      const before = await buildAt(beforeDir);
      const off = await paired(
        async () => counted(await ingestRound(before, fake.url, redisUrl)),
        async () => counted(await ingestRound(THIS_BUILD, fake.url, redisUrl)),
      );
      rows.push(pairedRow('tracing: ingest with tracing exporter off vs before', 'req/s', off, 0.97));
      // The same pairing of this build against itself: what the order of a pair and the machine
      // alone make of a ratio, to read the row above against.
      const control = await paired(
        async () => counted(await ingestRound(THIS_BUILD, fake.url, redisUrl)),
        async () => counted(await ingestRound(THIS_BUILD, fake.url, redisUrl)),
      );
      rows.push(pairedRow('tracing: control, ingest tracing off vs itself', 'req/s', control));
    } else {
      process.stderr.write(
        'tracing: BENCH_BEFORE_DIR unset, "off vs before" left out (see scripts/bench-before.sh)\n',
      );
    }
    const on = await paired(
      async () => counted(await ingestRound(THIS_BUILD, fake.url, redisUrl)),
      async () =>
        counted(
          await ingestRound(THIS_BUILD, fake.url, redisUrl, {
            OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
          }),
        ),
    );
    rows.push(pairedRow('tracing: ingest with tracing on (OTLP/HTTP) vs off', 'req/s', on));
    rows.push(
      countRow(
        'tracing: ingest errors and non-2xx',
        'count',
        failures.reduce((sum, r) => sum + r.errors + r.non2xx, 0),
      ),
    );
    rows.push({
      scenario: 'tracing: spans received with tracing on',
      metric: 'count',
      value: receiver.spans.length,
    });
  } finally {
    await receiver.close();
    await fake.close();
  }
  return rows;
}
