/**
 * What the per-key rate limit (SPEC §10, docs/limits.md) costs on the ingest path: `POST /v1/messages`
 * (accept only, engine off) with `RATE_LIMIT_PER_MIN` set high enough never to refuse, against the same
 * gateway with the limit off, in alternating rounds, each round on a gateway of its own. The limiter
 * reserves tokens in Redis in batches, so the figure shows whether that keeps the check off the
 * request's critical path.
 */
import { Redis } from 'ioredis';
import { ADAPTERS } from '../../adapters/index.js';
import { loadConfig } from '../../config/load.js';
import { createGateway } from '../../src/gateway.js';
import { createLogger } from '../../src/logger.js';
import { type BenchRow, countRow, load, messageBody, paired, pairedRow } from '../lib.js';

const KEY = 'bench-limits-key-0123456789abcdef';
const CONNECTIONS = 50;
const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 5);
const CONVERSATIONS = 100;
/** High enough that the load never reaches it: the check runs on every request, none is refused. */
const HIGH_LIMIT = '100000000';

/**
 * Drops a round's keys once it is measured. The engine is off, so every accepted message stays
 * queued: left in place, each round would run against a bigger Redis (and its append-only file
 * rewrites) than the one before, and the second gateway of every pair would pay for the first's.
 */
async function clear(redisUrl: string, prefix: string): Promise<void> {
  if (!/^rediss?:\/\//.test(redisUrl)) return;
  const redis = new Redis(redisUrl);
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await redis.unlink(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

async function ingest(redisUrl: string, prefix: string, limited: boolean) {
  const config = loadConfig(
    {
      REDIS_URL: redisUrl,
      REDIS_KEY_PREFIX: prefix,
      API_KEYS: KEY,
      QUEUE_MAX_PENDING: '100000000',
      LOG_LEVEL: 'silent',
      RATE_LIMIT_PER_MIN: limited ? HIGH_LIMIT : '0',
    },
    ADAPTERS,
  );
  const gw = await createGateway(config, createLogger('silent'), { startEngine: false });
  const url = await gw.start(0, '127.0.0.1');
  try {
    const headers = { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' };
    const conversations = await Promise.all(
      Array.from({ length: CONVERSATIONS }, async () => {
        const res = await fetch(`${url}/v1/sessions`, { method: 'POST', headers, body: '{}' });
        return ((await res.json()) as { conversationId: string }).conversationId;
      }),
    );
    const probe = await fetch(`${url}/v1/conversations?take=1`, { headers });
    await probe.arrayBuffer();
    if ((probe.headers.get('ratelimit-limit') !== null) !== limited) {
      throw new Error(`the rate limit is ${limited ? 'not on' : 'still on'} where it should be`);
    }
    let n = 0;
    const result = await load({
      url: `${url}/v1/messages`,
      headers,
      request: () => ({ body: messageBody(conversations, `${prefix}-`, n++) }),
      connections: CONNECTIONS,
      durationS: DURATION_S,
    });
    return { rps: result.rps, errors: result.errors + result.non2xx };
  } finally {
    await gw.stop();
    await clear(redisUrl, prefix);
  }
}

export async function run(redisUrl: string): Promise<BenchRow[]> {
  let round = 0;
  const result = await paired(
    () => ingest(redisUrl, `bench-limits-off-${round}`, false),
    () => ingest(redisUrl, `bench-limits-on-${round++}`, true),
  );
  const all = result.rounds.flatMap((r) => [r.subject, r.baseline]);
  return [
    pairedRow('limits: ingest with rate limiting vs without', 'req/s', result, 0.95),
    countRow(
      'limits: errors and non-2xx',
      'count',
      all.reduce((n, r) => n + r.errors, 0),
    ),
  ];
}
