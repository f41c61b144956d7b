/**
 * Replication benchmark (issue 14): what an acknowledgement that waits for a replica costs. A real
 * master with one replica (private redis-servers on loopback, nothing persisted), two gateways on it
 * with the engine off: one with REDIS_WAIT_REPLICAS=auto (each accept is followed by WAIT 1 in the same
 * pipeline), one with REDIS_WAIT_REPLICAS=0 (none). Accepts per second of the first against the second,
 * measured in alternating rounds of the same run.
 */
import { ADAPTERS } from '../../adapters/index.js';
import { loadConfig } from '../../config/load.js';
import { createGateway } from '../../src/gateway.js';
import { createLogger } from '../../src/logger.js';
import { RedisNode } from '../../test/helpers/redis-rigs.js';
import { type BenchRow, load, messageBody, paired, pairedRow } from '../lib.js';

const KEY = 'bench-key-0123456789abcdef';
const CONNECTIONS = 50;
const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 5);
const CONVERSATIONS = 100;

async function gateway(redisUrl: string, prefix: string, waitReplicas: string) {
  const config = loadConfig(
    {
      REDIS_URL: redisUrl,
      REDIS_KEY_PREFIX: prefix,
      REDIS_WAIT_REPLICAS: waitReplicas,
      API_KEYS: KEY,
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

export async function run(_redisUrl: string): Promise<BenchRow[]> {
  const master = await RedisNode.start([]);
  const replica = await RedisNode.start(['--replicaof', '127.0.0.1', String(master.port)]);
  const gateways: Awaited<ReturnType<typeof gateway>>[] = [];
  try {
    // The replica must be in sync before the first accept, or `auto` would count it out.
    for (let i = 0; ; i++) {
      const info = String(await master.command('INFO', 'replication'));
      if (/^slave0:.*state=online/m.test(info)) break;
      if (i > 200) throw new Error('the replica did not come online');
      await new Promise((r) => setTimeout(r, 50));
    }
    const url = `redis://127.0.0.1:${master.port}`;
    const waiting = await gateway(url, 'bench-wait', 'auto');
    const plain = await gateway(url, 'bench-nowait', '0');
    gateways.push(waiting, plain);
    const target = async (g: typeof waiting, prefix: string) => {
      const conversations = await sessions(g.url, CONVERSATIONS);
      let n = 0;
      return {
        url: `${g.url}/v1/messages`,
        headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
        request: () => ({ body: messageBody(conversations, prefix, n++) }),
        connections: CONNECTIONS,
        durationS: DURATION_S,
      };
    };
    const withWait = await target(waiting, 'w-');
    const withoutWait = await target(plain, 'n-');
    const result = await paired(
      () => load(withoutWait),
      () => load(withWait),
    );
    const confirmed = String(await master.command('INFO', 'commandstats'));
    const waits = Number(/^cmdstat_wait:calls=(\d+)/m.exec(confirmed)?.[1] ?? 0);
    if (waits === 0) throw new Error('the WAIT gateway sent no WAIT: the comparison would mean nothing');
    return [
      pairedRow(
        'replication: accepts with WAIT 1 (master + replica) vs REDIS_WAIT_REPLICAS=0',
        'req/s',
        result,
      ),
    ];
  } finally {
    for (const g of gateways) await g.gw.stop();
    await replica.dispose();
    await master.dispose();
  }
}
