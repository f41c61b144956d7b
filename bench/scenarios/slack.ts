/**
 * Slack benchmarks (issue: Slack channel): signed Events API requests ingested (v0 signature check,
 * classification, dedupe + store + enqueue) vs a bare Express endpoint parsing the same JSON bodies, in
 * the same run. Every fourth request is a Slack retry of the one before (same body, fresh timestamp and
 * signature, `X-Slack-Retry-Num`), so the dedupe path is measured too and checked: no message may be
 * stored twice. The engine stays off: replies are paced at one per second per channel by design, which
 * would measure Slack's rate limit rather than the gateway.
 */
import { ADAPTERS } from '../../adapters/index.js';
import { loadConfig } from '../../config/load.js';
import { createGateway } from '../../src/gateway.js';
import { createLogger } from '../../src/logger.js';
import {
  BOT_TOKEN,
  directMessage,
  FakeSlackApi,
  SIGNING_SECRET,
  signSlack,
} from '../../test/fakes/slack-api.js';
import { startBareSlackAccept } from '../accept-baseline.js';
import { type BenchRow, countRow, load, paired, pairedRow, startBare } from '../lib.js';

const PATH = '/webhooks/slack/events';
const CONNECTIONS = 50;
const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 5);
const USERS = 100;

/** Builds signed DM events: a unique ts per message, one of USERS DM channels, every fourth a retry. */
function eventRequests() {
  let n = 0;
  let unique = 0;
  let previous = '';
  const base = Math.floor(Date.now() / 1000);
  const next = () => {
    const i = n++;
    let body: string;
    let retry: Record<string, string> = {};
    if (i % 4 === 3 && previous) {
      body = previous;
      retry = { 'x-slack-retry-num': '1', 'x-slack-retry-reason': 'http_timeout' };
    } else {
      unique += 1;
      const user = i % USERS;
      const ts = `${base}.${String(i).padStart(6, '0')}`;
      body = directMessage({
        channel: `D${String(user).padStart(6, '0')}`,
        user: `U${String(user).padStart(6, '0')}`,
        text: `bench message ${i}`,
        ts,
      });
      previous = body;
    }
    return { body, headers: { ...signSlack(body), ...retry } };
  };
  return { next, unique: () => unique };
}

async function gateway(apiUrl: string, redisUrl: string | undefined) {
  const config = loadConfig(
    {
      ...(redisUrl ? { REDIS_URL: redisUrl, REDIS_KEY_PREFIX: 'bench-slack' } : {}),
      API_KEYS: 'bench-api-key-0123456789abcdef',
      SLACK_SIGNING_SECRET: SIGNING_SECRET,
      SLACK_BOT_TOKEN: BOT_TOKEN,
      SLACK_API_URL: apiUrl,
      QUEUE_MAX_PENDING: '10000000',
      LOG_LEVEL: 'silent',
      // One key sends the whole load: the per-key limit is measured in its own row (limits.ts).
      RATE_LIMIT_PER_MIN: '0',
    },
    ADAPTERS,
  );
  const gw = await createGateway(config, createLogger('silent'), { startEngine: false });
  const url = await gw.start(0, '127.0.0.1');
  return { gw, url };
}

/**
 * Runs the scenario on Redis when `redisUrl` is given (as `npm run bench` does), else on the embedded
 * backend.
 */
export async function run(redisUrl?: string): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const headers = { 'content-type': 'application/json' };
  const fake = await FakeSlackApi.start();
  // users.info answers for every bench user, so names are looked up once each and then cached.
  for (let u = 0; u < USERS; u++) fake.users.set(`U${String(u).padStart(6, '0')}`, { name: `user${u}` });
  try {
    const bare = await startBare();
    const bareRequests = eventRequests();
    const bareRun = () =>
      load({
        url: `${bare.url}/bare`,
        headers,
        request: bareRequests.next,
        connections: CONNECTIONS,
        durationS: DURATION_S,
      });

    // The durable accept's share: bare Express + the v0 check + one EVALSHA of the accept script per
    // request, on the same Redis, in the same rounds (Redis runs only: the script needs it).
    const channels = Array.from({ length: USERS }, (_, u) => `D${String(u).padStart(6, '0')}`);
    const bareAccept = redisUrl
      ? await startBareSlackAccept(redisUrl, 'bench-bare-slack', SIGNING_SECRET, channels)
      : undefined;
    const bareAcceptRequests = eventRequests();
    const baselines = async () => {
      const plain = await bareRun();
      const accepting = bareAccept
        ? await load({
            url: `${bareAccept.url}/bare-slack`,
            headers,
            request: bareAcceptRequests.next,
            connections: CONNECTIONS,
            durationS: DURATION_S,
          })
        : undefined;
      return { rps: plain.rps, plain, accepting };
    };

    // One request generator for every round, so only the intended retries repeat a message.
    const ingest = await gateway(fake.url, redisUrl);
    const requests = eventRequests();
    const ingested = await paired(baselines, () =>
      load({
        url: `${ingest.url}${PATH}`,
        headers,
        request: requests.next,
        connections: CONNECTIONS,
        durationS: DURATION_S,
      }),
    );
    await bare.close();
    await bareAccept?.close();
    const sum = async (metric: typeof ingest.gw.deps.metrics.accepted) =>
      (await metric.get()).values.reduce((s, v) => s + v.value, 0);
    const accepted = await sum(ingest.gw.deps.metrics.accepted);
    const duplicates = await sum(ingest.gw.deps.metrics.duplicates);
    await ingest.gw.stop();
    const ingestLoad = ingested.median.subject;
    rows.push(pairedRow('slack: signed events ingested vs bare Express', 'req/s', ingested, 0.7));
    if (bareAccept) {
      // Each round's own pair, and the round with the median ratio shown with its figures.
      const byRatio = (of: (r: (typeof ingested.rounds)[number]) => { value: number; baseline: number }) => {
        const sorted = ingested.rounds
          .map((r) => {
            const { value, baseline } = of(r);
            return { value, baseline, ratio: baseline > 0 ? value / baseline : 0 };
          })
          .sort((a, b) => a.ratio - b.ratio);
        const median = sorted[Math.floor((sorted.length - 1) / 2)]!;
        return {
          ...median,
          ...(sorted.length > 1
            ? { spread: [sorted[0]!.ratio, sorted[sorted.length - 1]!.ratio] as [number, number] }
            : {}),
        };
      };
      const vsAccept = byRatio((r) => ({ value: r.subject.rps, baseline: r.baseline.accepting!.rps }));
      rows.push({
        scenario:
          'slack: signed events ingested vs bare Express + v0 signature check + one EVALSHA of the accept script',
        metric: 'req/s',
        ...vsAccept,
      });
      const acceptShare = byRatio((r) => ({
        value: r.baseline.accepting!.rps,
        baseline: r.baseline.plain.rps,
      }));
      rows.push({
        scenario:
          'slack: bare Express + v0 signature check + one EVALSHA of the accept script vs bare Express',
        metric: 'req/s',
        ...acceptShare,
      });
      rows.push(
        countRow(
          'slack: bare accept baseline errors and non-2xx',
          'count',
          ingested.rounds.reduce(
            (total, r) => total + r.baseline.accepting!.errors + r.baseline.accepting!.non2xx,
            0,
          ),
        ),
      );
    }
    rows.push({
      scenario: 'slack: event ack latency p99 (Slack allows 3000)',
      metric: 'ms',
      value: ingestLoad.p99,
    });
    rows.push(
      countRow(
        'slack: ingest errors and non-2xx',
        'count',
        ingested.rounds.reduce((total, r) => total + r.subject.errors + r.subject.non2xx, 0),
      ),
    );
    rows.push({ scenario: 'slack: retries answered as duplicates', metric: 'count', value: duplicates });
    rows.push(
      countRow('slack: messages stored more than once', 'count', Math.max(0, accepted - requests.unique())),
    );
  } finally {
    await fake.close();
  }
  return rows;
}
