/**
 * `npx tsx bench/commands.ts [messages] [noop|reply]`: Redis commands per message. Accepts the messages
 * through `POST /v1/messages` (engine off), then drains them with a no-op bot (`noop`, the default) or
 * a demo-style bot answering each with one reply sent through the API channel (`reply`), and prints per
 * phase the
 * commands the gateway sent (round trips; scripts by name, seen with MONITOR) and the total Redis
 * executed (INFO commandstats, which counts the commands run inside scripts too).
 */
import { createHash } from 'node:crypto';
import { Redis } from 'ioredis';
import { ADAPTERS } from '../adapters/index.js';
import { loadConfig } from '../config/load.js';
import { createGateway } from '../src/gateway.js';
import { createLogger } from '../src/logger.js';
import type { Bot, BotResponse } from '../src/pipeline/bot/types.js';
import { SCRIPTS } from '../src/store/redis/scripts.js';
import { RedisServer } from '../test/helpers/redis.js';

const KEY = 'bench-api-key-0123456789abcdef';
const MESSAGES = Number(process.argv[2] ?? 1_000);
const CONVERSATIONS = 100;
const CONNECTIONS = 50;

const MODE = process.argv[3] ?? 'noop';
if (MODE !== 'noop' && MODE !== 'reply') throw new Error(`unknown mode ${MODE}: noop or reply`);

const bot: Bot = {
  kind: 'demo',
  reply: async ({ message }): Promise<BotResponse> => ({
    replies: MODE === 'reply' ? [{ text: `You said: ${message.text}` }] : [],
  }),
};

const scriptByDigest = new Map(SCRIPTS.map((s) => [createHash('sha1').update(s.lua).digest('hex'), s.name]));
const IGNORED = new Set(['info', 'config', 'monitor']);

/** Everything Redis executed, scripts' inner commands included. */
async function executed(admin: Redis): Promise<number> {
  const info = await admin.info('commandstats');
  let total = 0;
  for (const m of info.matchAll(/^cmdstat_([^:|]+)[^:]*:calls=(\d+)/gm))
    if (!IGNORED.has(m[1]!)) total += Number(m[2]);
  return total;
}

/** Commands clients sent (not those run by scripts), counted by name; scripts as `evalsha <name>`. */
function sent(monitor: Redis): { counts: Map<string, number>; stop(): void } {
  const counts = new Map<string, number>();
  const listener = (_time: string, args: string[], source: string) => {
    if (source === 'lua') return;
    const command = args[0]!.toLowerCase();
    if (IGNORED.has(command)) return;
    const name = command === 'evalsha' ? `evalsha ${scriptByDigest.get(args[1]!) ?? '?'}` : command;
    counts.set(name, (counts.get(name) ?? 0) + 1);
  };
  monitor.on('monitor', listener);
  return { counts, stop: () => monitor.off('monitor', listener) };
}

async function phase(admin: Redis, monitor: Redis, name: string, work: () => Promise<void>): Promise<void> {
  await admin.config('RESETSTAT');
  const seen = sent(monitor);
  await work();
  // Let MONITOR catch up with the last commands.
  await new Promise((r) => setTimeout(r, 200));
  seen.stop();
  const rows = [...seen.counts].sort((a, b) => b[1] - a[1]);
  const total = rows.reduce((sum, [, n]) => sum + n, 0);
  const per = (n: number) => (n / MESSAGES).toFixed(2);
  console.log(`\n${name}: ${per(total)} commands sent, ${per(await executed(admin))} executed per message`);
  for (const [command, n] of rows) console.log(`  ${command.padEnd(20)} ${per(n)}`);
}

async function main(): Promise<void> {
  const redis = await RedisServer.start();
  const admin = new Redis(redis.url);
  const monitored = new Redis(redis.url);
  const monitor = await monitored.monitor();
  const config = loadConfig(
    {
      REDIS_URL: redis.url,
      API_KEYS: KEY,
      WORKER_CONCURRENCY: '32',
      QUEUE_MAX_PENDING: '10000000',
      LOG_LEVEL: 'silent',
      RATE_LIMIT_PER_MIN: '0',
    },
    ADAPTERS,
  );
  const gw = await createGateway(config, createLogger('silent'), { bot, startEngine: false });
  try {
    const url = await gw.start(0, '127.0.0.1');
    const headers = { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' };
    const conversations = await Promise.all(
      Array.from({ length: CONVERSATIONS }, async () => {
        const res = await fetch(`${url}/v1/sessions`, { method: 'POST', headers, body: '{}' });
        return ((await res.json()) as { conversationId: string }).conversationId;
      }),
    );

    let next = 0;
    await phase(admin, monitor, 'ingest (POST /v1/messages, wait 0)', async () => {
      await Promise.all(
        Array.from({ length: CONNECTIONS }, async () => {
          for (let i = next++; i < MESSAGES; i = next++) {
            const res = await fetch(`${url}/v1/messages`, {
              method: 'POST',
              headers,
              body: JSON.stringify({
                conversationId: conversations[i % CONVERSATIONS],
                text: `m${i}`,
                wait: 0,
              }),
            });
            if (res.status !== 202) throw new Error(`accept answered ${res.status}`);
          }
        }),
      );
    });

    // Polls the metrics, not Redis, so the counts are the engine's own.
    const processed = async () =>
      (await gw.deps.metrics.processed.get()).values.reduce((sum, v) => sum + v.value, 0);
    await phase(
      admin,
      monitor,
      `drain (${MODE === 'reply' ? 'one reply per message' : 'no-op bot'})`,
      async () => {
        await gw.deps.engine.start();
        while ((await processed()) < MESSAGES) await new Promise((r) => setTimeout(r, 20));
      },
    );
  } finally {
    await gw.stop();
    monitor.disconnect();
    monitored.disconnect();
    admin.disconnect();
    await redis.dispose();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
