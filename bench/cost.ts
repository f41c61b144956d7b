/**
 * What one request costs the server, beside the scenarios' throughput ratios: CPU time (the process's
 * own, garbage-collector threads included), bytes allocated on the V8 heap and time spent in garbage
 * collection per request, for a gateway path and the bare Express endpoint, in alternating rounds
 * with the load generator in a process of its own (`bench/cost-load.ts`). Per-request costs move far
 * less with the machine's load than throughput does, so they show what a change is worth where a
 * throughput ratio on a busy machine cannot.
 *
 *   npm run bench:cost -- slack|twilio|api [rounds] [seconds]
 *
 * Also reports the private Redis server's CPU time per request (the gateway's commands cost it too).
 */
import { execFile } from 'node:child_process';
import type { Server } from 'node:http';
import { promisify } from 'node:util';
import { GCProfiler } from 'node:v8';
import { Redis } from 'ioredis';
import { ADAPTERS } from '../adapters/index.js';
import { loadConfig } from '../config/load.js';
import { createGateway } from '../src/gateway.js';
import { createLogger } from '../src/logger.js';
import { BOT_TOKEN, FakeSlackApi, SIGNING_SECRET } from '../test/fakes/slack-api.js';
import { ACCOUNT_SID, AUTH_TOKEN, FakeTwilioApi } from '../test/fakes/twilio-api.js';
import { RedisServer } from '../test/helpers/redis.js';
import type { CostLoad } from './cost-load.js';
import { startBare } from './lib.js';

const run = promisify(execFile);
const KEY = 'bench-api-key-0123456789abcdef';
const PUBLIC_URL = 'https://chat.example.com';
const kind = (process.argv[2] ?? 'slack') as CostLoad['kind'];
const rounds = Number(process.argv[3] ?? 5);
const seconds = Number(process.argv[4] ?? 3);

interface Cost {
  requests: number;
  bad: number;
  cpuUs: number;
  allocKb: number;
  gcUs: number;
  redisUs: number;
}

async function redisCpuUs(redis: Redis): Promise<number> {
  const info = await redis.info('cpu');
  const field = (name: string) => Number(new RegExp(`${name}:([0-9.]+)`).exec(info)?.[1] ?? 0);
  return (field('used_cpu_user') + field('used_cpu_sys')) * 1e6;
}

/** Runs one load against `server` and returns its costs per request. */
async function measure(server: Server, spec: CostLoad, redis: Redis): Promise<Cost> {
  let requests = 0;
  const onRequest = () => {
    requests += 1;
  };
  server.on('request', onRequest);
  const profiler = new GCProfiler();
  const redisBefore = await redisCpuUs(redis);
  const cpuBefore = process.cpuUsage();
  profiler.start();
  const { stdout } = await run(
    process.execPath,
    [new URL('./cost-load.js', import.meta.url).pathname, JSON.stringify(spec)],
    {
      maxBuffer: 1 << 24,
    },
  );
  const gc = profiler.stop();
  const cpu = process.cpuUsage(cpuBefore);
  const redisUs = (await redisCpuUs(redis)) - redisBefore;
  server.off('request', onRequest);
  const out = JSON.parse(stdout.trim().split('\n').at(-1)!) as { total: number; bad: number };
  // Allocated bytes: what each collection found in use beyond what the one before left.
  let allocated = 0;
  let left: number | undefined;
  for (const s of gc.statistics) {
    const before = s.beforeGC.heapStatistics.usedHeapSize;
    if (left !== undefined) allocated += Math.max(0, before - left);
    left = s.afterGC.heapStatistics.usedHeapSize;
  }
  const gcUs = gc.statistics.reduce((sum, s) => sum + s.cost, 0);
  const n = Math.max(1, requests);
  return {
    requests,
    bad: out.bad,
    cpuUs: (cpu.user + cpu.system) / n,
    allocKb: allocated / 1024 / n,
    gcUs: gcUs / n,
    redisUs: redisUs / n,
  };
}

async function main(): Promise<void> {
  const redisServer = await RedisServer.start({ fsync: 'everysec' });
  const redis = new Redis(redisServer.url);
  const fakeSlack = await FakeSlackApi.start();
  for (let u = 0; u < 100; u++) fakeSlack.users.set(`U${String(u).padStart(6, '0')}`, { name: `user${u}` });
  const fakeTwilio = await FakeTwilioApi.start();
  const config = loadConfig(
    {
      REDIS_URL: redisServer.url,
      REDIS_KEY_PREFIX: `cost-${kind}`,
      PUBLIC_URL,
      API_KEYS: KEY,
      SLACK_SIGNING_SECRET: SIGNING_SECRET,
      SLACK_BOT_TOKEN: BOT_TOKEN,
      SLACK_API_URL: fakeSlack.url,
      TWILIO_ACCOUNT_SID: ACCOUNT_SID,
      TWILIO_AUTH_TOKEN: AUTH_TOKEN,
      TWILIO_API_URL: fakeTwilio.url,
      QUEUE_MAX_PENDING: '100000000',
      LOG_LEVEL: 'silent',
      RATE_LIMIT_PER_MIN: '0',
    },
    ADAPTERS,
  );
  const gw = await createGateway(config, createLogger('silent'), { startEngine: false });
  const url = await gw.start(0, '127.0.0.1');
  const bare = await startBare();
  let conversations: string[] | undefined;
  if (kind === 'api') {
    conversations = await Promise.all(
      Array.from({ length: 100 }, async () => {
        const res = await fetch(`${url}/v1/sessions`, {
          method: 'POST',
          headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
          body: '{}',
        });
        return ((await res.json()) as { conversationId: string }).conversationId;
      }),
    );
  }
  const path = { slack: '/webhooks/slack/events', twilio: '/webhooks/twilio', api: '/v1/messages' }[kind];
  const headers: Record<string, string> =
    kind === 'twilio'
      ? { 'content-type': 'application/x-www-form-urlencoded; charset=UTF-8' }
      : kind === 'api'
        ? { 'content-type': 'application/json', authorization: `Bearer ${KEY}` }
        : { 'content-type': 'application/json' };
  let runs = 0;
  const spec = (target: string): CostLoad => ({
    kind,
    url: target,
    publicUrl: `${PUBLIC_URL}${path}`,
    headers,
    ...(conversations ? { conversations } : {}),
    idPrefix: String(runs++),
    connections: 20,
    durationS: seconds,
  });
  // A first pair warms both servers up and is not counted.
  await measure(bare.server, spec(`${bare.url}/bare`), redis);
  await measure(gw.server, spec(`${url}${path}`), redis);
  const results: { bare: Cost; gw: Cost }[] = [];
  for (let i = 0; i < rounds; i++) {
    const b = await measure(bare.server, spec(`${bare.url}/bare`), redis);
    const g = await measure(gw.server, spec(`${url}${path}`), redis);
    results.push({ bare: b, gw: g });
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;
  const row = (name: string, of: (c: Cost) => number, digits = 1) => {
    const g = median(results.map((r) => of(r.gw)));
    const b = median(results.map((r) => of(r.bare)));
    const ratios = results.map((r) => of(r.gw) / of(r.bare));
    const spread =
      ratios.length > 1 ? ` (${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)})` : '';
    console.log(
      `${name.padEnd(28)} gateway ${g.toFixed(digits).padStart(8)}  bare ${b.toFixed(digits).padStart(8)}  ${(
        g / b
      ).toFixed(2)}x${spread}`,
    );
  };
  console.log(`${kind}: ${rounds} rounds of ${seconds} s, 20 connections, medians per request`);
  row('CPU µs / request', (c) => c.cpuUs);
  row('CPU µs / request + Redis', (c) => c.cpuUs + c.redisUs);
  row('allocated KB / request', (c) => c.allocKb);
  row('GC µs / request', (c) => c.gcUs, 2);
  console.log(`redis µs / request, gateway: ${median(results.map((r) => r.gw.redisUs)).toFixed(1)}`);
  console.log(
    `errors and non-2xx: gateway ${results.reduce((s, r) => s + r.gw.bad, 0)}, bare ${results.reduce((s, r) => s + r.bare.bad, 0)}`,
  );
  await bare.close();
  await gw.stop();
  await fakeSlack.close();
  await fakeTwilio.close();
  redis.disconnect();
  await redisServer.dispose();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
