/**
 * Twilio benchmarks (issue: Twilio channel): signed inbound webhooks ingested (signature check, mapping,
 * dedupe + store + enqueue) vs a bare Express endpoint parsing the same form bodies, in the same run.
 * Every request has a unique MessageSid and a fresh signature, made by the same generator for both sides
 * so the load generator's own cost is the same. A second run keeps the engine on: the demo bot answers
 * each message through the real twilio client to a fake of the REST API in a process of its own, and
 * the figure is replies sustained at the fake (from the load's first request to the last reply) beside
 * acks a second.
 */
import twilio from 'twilio';
import { ADAPTERS } from '../../adapters/index.js';
import { loadConfig } from '../../config/load.js';
import { createGateway } from '../../src/gateway.js';
import { createLogger } from '../../src/logger.js';
import { ACCOUNT_SID, AUTH_TOKEN, encodeForm, smsParams } from '../../test/fakes/twilio-api.js';
import { FakeTwilioProcess, type ReplyStats } from '../fake-twilio.js';
import { startFloor } from '../floor.js';
import {
  type BenchRow,
  countRow,
  type LoadResult,
  load,
  paired,
  pairedRow,
  ratioRow,
  startBare,
} from '../lib.js';

export const PUBLIC_URL = 'https://chat.example.com';
export const PATH = '/webhooks/twilio';
export const CONNECTIONS = 50;
export const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 5);
export const CUSTOMERS = 1000;
export const HEADERS = { 'content-type': 'application/x-www-form-urlencoded; charset=UTF-8' };

let generators = 0;

/**
 * Builds signed inbound SMS requests: unique MessageSid (also across the generators of one process),
 * one of CUSTOMERS senders, fresh signature.
 */
export function webhookRequests() {
  let n = 0;
  const generator = generators++;
  const url = `${PUBLIC_URL}${PATH}`;
  return () => {
    const i = n++;
    const params = smsParams({
      MessageSid: `SM${generator.toString(16).padStart(8, '0')}${i.toString(16).padStart(24, '0')}`,
      From: `+1415555${String(i % CUSTOMERS).padStart(4, '0')}`,
      Body: `bench message ${generator}.${i}`,
    });
    return {
      body: encodeForm(params),
      headers: { 'x-twilio-signature': twilio.getExpectedTwilioSignature(AUTH_TOKEN, url, params) },
    };
  };
}

export async function gateway(
  apiUrl: string,
  startEngine: boolean,
  redisUrl: string | undefined,
  prefix: string,
) {
  const config = loadConfig(
    {
      ...(redisUrl ? { REDIS_URL: redisUrl, REDIS_KEY_PREFIX: prefix } : {}),
      PUBLIC_URL,
      API_KEYS: 'bench-api-key-0123456789abcdef',
      TWILIO_ACCOUNT_SID: ACCOUNT_SID,
      TWILIO_AUTH_TOKEN: AUTH_TOKEN,
      TWILIO_API_URL: apiUrl,
      QUEUE_MAX_PENDING: '10000000',
      LOG_LEVEL: 'silent',
      // One key sends the whole load: the per-key limit is measured in its own row (limits.ts).
      RATE_LIMIT_PER_MIN: '0',
    },
    ADAPTERS,
  );
  const gw = await createGateway(config, createLogger('silent'), { startEngine });
  const url = await gw.start(0, '127.0.0.1');
  return { gw, url };
}

/** Waits (up to two minutes) until the gateway has no message left to process. */
export async function drained(gw: { deps: { store: { pendingCount(): Promise<number> } } }): Promise<void> {
  const deadline = performance.now() + 120_000;
  while ((await gw.deps.store.pendingCount()) > 0 && performance.now() < deadline) {
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Acked requests of a load: those answered 2xx. */
export function acked(result: LoadResult): number {
  return result.total - result.non2xx;
}

/**
 * Replies a second sustained by a load at the fake: distinct replies over the time from the load's
 * first request to the last reply.
 */
export function sustained(result: LoadResult, replies: ReplyStats): number {
  const seconds = (replies.lastAt - (result.startedAt ?? replies.firstAt)) / 1000;
  return seconds > 0 ? replies.distinct / seconds : 0;
}

/**
 * Runs the scenario on Redis when `redisUrl` is given (as `npm run bench` does), else on the embedded
 * backend.
 */
export async function run(redisUrl?: string): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const headers = HEADERS;
  const fake = await FakeTwilioProcess.start();
  try {
    const bare = await startBare();
    /** A load of `url` from its own request generator, made once so no MessageSid repeats. */
    const runner = (url: string) => {
      const request = webhookRequests();
      return () => load({ url, headers, request, connections: CONNECTIONS, durationS: DURATION_S });
    };
    const bareRun = runner(`${bare.url}/bare`);

    // Ingest only: the webhook's whole ack path, with the engine off so replies do not compete for CPU.
    // One request generator for every round, so no MessageSid repeats.
    const ingest = await gateway(fake.url, false, redisUrl, 'bench-twilio-ingest');
    const ingestRun = runner(`${ingest.url}${PATH}`);
    const ingested = await paired(bareRun, ingestRun);

    // The ingest floor (bench/floor.ts): bare Express with the twilio package's signature check and
    // one EVALSHA of the store's accept script, the least an ack that keeps SPEC §4 takes; against bare,
    // and the gateway against it, in paired rounds of their own.
    const floorRows: BenchRow[] = [];
    if (redisUrl) {
      const floor = await startFloor({
        apiUrl: fake.url,
        redisUrl,
        prefix: 'bench-twilio-floor',
        signedUrl: `${PUBLIC_URL}${PATH}`,
        senders: Array.from({ length: CUSTOMERS }, (_, i) => `+1415555${String(i).padStart(4, '0')}`),
        answer: false,
      });
      const floorRun = runner(floor.url);
      const floorVsBare = await paired(bareRun, floorRun);
      const gatewayVsFloor = await paired(floorRun, ingestRun);
      await floor.close();
      floorRows.push(
        pairedRow(
          'twilio: ingest floor (signature check + one accept EVALSHA) vs bare Express',
          'req/s',
          floorVsBare,
        ),
        pairedRow('twilio: signed webhooks ingested vs the ingest floor', 'req/s', gatewayVsFloor),
        countRow(
          'twilio: ingest floor rounds: errors and non-2xx (floor and gateway)',
          'count',
          [
            ...floorVsBare.rounds.map((r) => r.subject),
            ...gatewayVsFloor.rounds.flatMap((r) => [r.baseline, r.subject]),
          ].reduce((sum, r) => sum + r.errors + r.non2xx, 0),
        ),
      );
    }
    await ingest.gw.stop();
    const ingestLoad = ingested.median.subject;
    const bareLoad = ingested.median.baseline;
    rows.push(pairedRow('twilio: signed webhooks ingested vs bare Express', 'req/s', ingested, 0.7));
    rows.push({ scenario: 'twilio: webhook ack latency p99', metric: 'ms', value: ingestLoad.p99 });
    rows.push(
      countRow(
        'twilio: ingest errors and non-2xx',
        'count',
        ingested.rounds.reduce((sum, r) => sum + r.subject.errors + r.subject.non2xx, 0),
      ),
    );
    rows.push(...floorRows);

    // With the demo bot answering each message through the twilio client to the fake REST API, in a
    // process of its own. Acks count at the load generator, replies at the fake.
    await fake.reset();
    const e2e = await gateway(fake.url, true, redisUrl, 'bench-twilio-e2e');
    const e2eLoad = await load({
      url: `${e2e.url}${PATH}`,
      headers,
      request: webhookRequests(),
      connections: CONNECTIONS,
      durationS: DURATION_S,
    });
    await drained(e2e.gw);
    const replies = await fake.settle(acked(e2eLoad));
    await e2e.gw.stop();
    await bare.close();
    rows.push(
      ratioRow('twilio: e2e webhooks acked (replies going out) vs bare', 'req/s', e2eLoad.rps, bareLoad.rps),
    );
    rows.push(
      ratioRow(
        "twilio: e2e sustained replies/s at the fake vs bare Express's acks",
        'replies/s',
        sustained(e2eLoad, replies),
        bareLoad.rps,
        0.5,
      ),
    );
    rows.push(countRow('twilio: e2e errors and non-2xx', 'count', e2eLoad.errors + e2eLoad.non2xx));
    rows.push(
      countRow(
        'twilio: acked messages never answered through the REST API',
        'count',
        Math.max(0, acked(e2eLoad) - replies.distinct),
      ),
    );
  } finally {
    await fake.close();
  }
  return rows;
}
