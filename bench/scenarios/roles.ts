/**
 * Roles (docs/running.md#roles): the accept tail of a `ROLE=web` process while a `ROLE=worker` process
 * drains a slow bot, against one `ROLE=all` process doing both, at the same offered load. Each side is
 * real gateway processes (the compiled `src/main.js`) on the run's Redis, each with a key prefix of its
 * own, and an HTTP bot that answers after `BENCH_ROLES_BOT_MS` (default 200 ms). The offered load
 * (`BENCH_ROLES_RATE`, default 400 messages a second) is more than the engine's slots can answer at
 * that bot latency (`WORKER_CONCURRENCY` 64 / 0.2 s = 320 a second), so the engine works flat out
 * through every measured second, in the same event loop as the accepts with `ROLE=all` and in a
 * process of its own with `web` and `worker`. The rounds alternate the two sides; each side's
 * processes are started for its run and killed after it, so only one side runs at a time.
 */
import { BOT_SECRET, FakeBot } from '../../test/fakes/bot.js';
import { type GatewayProcess, pendingOf, spawnGateway, stopGateway } from '../gateway-process.js';
import { type BenchRow, countRow, type LoadResult, pacedOffThread, ROUNDS } from '../lib.js';

const KEY = 'bench-api-key-0123456789abcdef';
const CONNECTIONS = 50;
const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 5);
const RATE = Number(process.env.BENCH_ROLES_RATE ?? 400);
const BOT_MS = Number(process.env.BENCH_ROLES_BOT_MS ?? 200);
const CONCURRENCY = 64;
const CONVERSATIONS = 100;
type Proc = GatewayProcess;

function spawnRole(role: 'all' | 'web' | 'worker', redisUrl: string, prefix: string, botUrl: string) {
  return spawnGateway(role, {
    REDIS_URL: redisUrl,
    REDIS_KEY_PREFIX: prefix,
    API_KEYS: KEY,
    BOT_URL: botUrl,
    BOT_SECRET,
    WORKER_CONCURRENCY: String(CONCURRENCY),
    QUEUE_MAX_PENDING: '10000000',
    LOG_LEVEL: 'warn',
    // One key sends the whole load: the per-key limit is measured in its own row (limits.ts).
    RATE_LIMIT_PER_MIN: '0',
  });
}

const stop = stopGateway;

async function sessions(url: string, n: number): Promise<string[]> {
  return Promise.all(
    Array.from({ length: n }, async () => {
      const res = await fetch(`${url}/v1/sessions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
        body: '{}',
      });
      return ((await res.json()) as { conversationId: string }).conversationId;
    }),
  );
}

const pending = pendingOf;

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor((sorted.length - 1) / 2)]!;
};

export async function run(redisUrl: string): Promise<BenchRow[]> {
  const bot = await FakeBot.start();
  bot.mode = { kind: 'echo', delayMs: BOT_MS };
  const procs = new Set<Proc>();
  let runs = 0;
  /**
   * One side of a round: its processes started on a key prefix of their own, the load offered, what
   * is still queued read, and the processes killed, so that neither side's engine, still draining,
   * runs beside the other side's measurement.
   */
  const side = async (roles: Array<'all' | 'web' | 'worker'>) => {
    const prefix = `bench-roles-${runs++}`;
    const started = await Promise.all(roles.map((role) => spawnRole(role, redisUrl, prefix, bot.url)));
    for (const p of started) procs.add(p);
    try {
      const front = started[0]!;
      const conversations = await sessions(front.url, CONVERSATIONS);
      const result = await pacedOffThread({
        url: `${front.url}/v1/messages`,
        headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
        conversations,
        idPrefix: `${prefix}-`,
        rate: RATE,
        connections: CONNECTIONS,
        durationS: DURATION_S,
      });
      return { ...result, queued: await pending(front.url) };
    } finally {
      await Promise.all(
        started.map(async (p) => {
          await stop(p);
          procs.delete(p);
        }),
      );
    }
  };
  try {
    const rounds: Array<{ all: LoadResult & { queued: number }; web: LoadResult & { queued: number } }> = [];
    for (let i = 0; i < ROUNDS; i++) {
      const allRun = await side(['all']);
      const webRun = await side(['web', 'worker']);
      rounds.push({ all: allRun, web: webRun });
      process.stderr.write(
        `roles round ${i + 1}: accept p99 ROLE=all ${allRun.p99.toFixed(1)} ms, web ${webRun.p99.toFixed(1)} ms; queued at the end ${allRun.queued} / ${webRun.queued}\n`,
      );
    }
    const webP99s = rounds.map((r) => r.web.p99);
    const webP99 = median(webP99s);
    const allP99 = median(rounds.map((r) => r.all.p99));
    const rows: BenchRow[] = [
      {
        scenario: `accept p99 on a web process while a worker drains a ${BOT_MS} ms bot, vs ROLE=all (${RATE} req/s; median)`,
        metric: 'ms',
        value: webP99,
        baseline: allP99,
        ratio: allP99 > 0 ? webP99 / allP99 : 0,
        ...(rounds.length > 1
          ? { spread: [Math.min(...webP99s), Math.max(...webP99s)] as [number, number] }
          : {}),
      },
      {
        scenario: '  accepted per second on the web process vs ROLE=all (offered the same)',
        metric: 'req/s',
        value: median(rounds.map((r) => r.web.rps)),
        baseline: median(rounds.map((r) => r.all.rps)),
      },
      // The engine worked flat out throughout: more was queued than it had answered when the load ended.
      {
        scenario: '  still queued when the load ended (web + worker / ROLE=all; median)',
        metric: 'count',
        value: median(rounds.map((r) => r.web.queued)),
        baseline: median(rounds.map((r) => r.all.queued)),
      },
      countRow(
        'roles: errors and non-2xx (both sides)',
        'count',
        rounds.reduce((sum, r) => sum + r.all.errors + r.all.non2xx + r.web.errors + r.web.non2xx, 0),
      ),
    ];
    const seen = new Map<string, number>();
    for (const call of bot.calls) seen.set(call.messageId, (seen.get(call.messageId) ?? 0) + 1);
    rows.push(
      countRow('roles: duplicates seen by the bot', 'count', [...seen.values()].filter((n) => n > 1).length),
    );
    return rows;
  } finally {
    await Promise.all([...procs].map(stop));
    await bot.close();
  }
}
