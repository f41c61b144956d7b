/**
 * What a CRM following along costs the message path: end to end (API ingest, bot, reply stored) with
 * one outbound webhook subscription to `message.created` (every inbound message and every reply is
 * signed and POSTed to it), against the same gateway with no subscription, in alternating rounds of
 * the same run, each round on a gateway of its own. The endpoint runs in a process of its own
 * (`bench/webhook-receiver-process.ts`), so the gateway does not pay for receiving its deliveries.
 * After each round's last reply the subject waits for the deliveries still under way: every event
 * must arrive.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ADAPTERS } from '../../adapters/index.js';
import { loadConfig } from '../../config/load.js';
import { createGateway } from '../../src/gateway.js';
import { createLogger } from '../../src/logger.js';
import type { Bot, BotRequest, BotResponse } from '../../src/pipeline/bot/types.js';
import { apiConversations, apiEndToEnd, type BenchRow, countRow, paired, pairedRow } from '../lib.js';
import type { ReceiverStats } from '../webhook-receiver-process.js';

const KEY = 'bench-webhooks-key-0123456789abcdef';
const CONNECTIONS = 50;
const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 5);
const CONVERSATIONS = 100;
/** How long the deliveries of a round may take after its last reply. */
const SETTLE_MS = 60_000;

class EchoBot implements Bot {
  readonly kind = 'demo' as const;
  readonly seen = new Set<string>();

  async reply({ message }: BotRequest): Promise<BotResponse> {
    this.seen.add(message.id);
    return { replies: [{ text: `You said: ${message.text}` }] };
  }
}

/** The endpoint's process: its URL, and its counts over IPC. */
class Receiver {
  #next = 0;
  readonly #waiting = new Map<number, (stats: ReceiverStats | undefined) => void>();

  private constructor(
    readonly child: ChildProcess,
    readonly url: string,
  ) {
    child.on('message', (m: { id?: number; stats?: ReceiverStats }) => {
      if (m.id === undefined) return;
      this.#waiting.get(m.id)?.(m.stats);
      this.#waiting.delete(m.id);
    });
  }

  static start(): Promise<Receiver> {
    const child = fork(fileURLToPath(new URL('../webhook-receiver-process.js', import.meta.url)), [], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    return new Promise((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code) => reject(new Error(`the webhook receiver exited with code ${code}`)));
      child.once('message', (m: { url: string }) => {
        child.removeAllListeners('exit');
        resolve(new Receiver(child, m.url));
      });
    });
  }

  #ask(op: 'stats' | 'reset'): Promise<ReceiverStats | undefined> {
    const id = this.#next++;
    return new Promise((resolve) => {
      this.#waiting.set(id, resolve);
      this.child.send({ id, op });
    });
  }

  async stats(): Promise<ReceiverStats> {
    return (await this.#ask('stats'))!;
  }

  async reset(): Promise<void> {
    await this.#ask('reset');
  }

  close(): void {
    this.child.disconnect();
  }
}

interface Outcome {
  rps: number;
  answered: number;
  errors: number;
  /** `message.created` events (inbound and replies) that had not arrived when the round gave up. */
  undelivered: number;
  /** Deliveries beyond one per event (retries of a delivery whose answer was lost). */
  repeated: number;
}

async function endToEnd(redisUrl: string, prefix: string, receiver: Receiver | undefined): Promise<Outcome> {
  const config = loadConfig(
    {
      REDIS_URL: redisUrl,
      REDIS_KEY_PREFIX: prefix,
      API_KEYS: KEY,
      QUEUE_MAX_PENDING: '10000000',
      LOG_LEVEL: 'silent',
      RATE_LIMIT_PER_MIN: '0',
      // The endpoint is on loopback: both sides have the same setting, one has a subscription.
      WEBHOOKS_ALLOW_PRIVATE: 'true',
    },
    ADAPTERS,
  );
  const bot = new EchoBot();
  const gw = await createGateway(config, createLogger('silent'), { bot });
  const url = await gw.start(0, '127.0.0.1');
  try {
    const headers = { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' };
    if (receiver) {
      await receiver.reset();
      const res = await fetch(`${url}/v1/webhooks`, {
        method: 'POST',
        headers,
        body: JSON.stringify({ url: receiver.url, events: ['message.created'] }),
      });
      if (res.status !== 201) throw new Error(`webhook subscription answered ${res.status}`);
    }
    const conversations = await apiConversations(url, headers, CONVERSATIONS);
    const { rps, errors } = await apiEndToEnd({
      url,
      headers,
      conversations,
      prefix,
      store: gw.deps.store,
      answered: () => bot.seen.size,
      connections: CONNECTIONS,
      durationS: DURATION_S,
    });
    const answered = bot.seen.size;
    let undelivered = 0;
    let repeated = 0;
    if (receiver) {
      // One event per accepted message and one per reply.
      const expected = 2 * answered;
      const deadline = performance.now() + SETTLE_MS;
      let stats = await receiver.stats();
      while (stats.distinct < expected && performance.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
        stats = await receiver.stats();
      }
      undelivered = Math.max(0, expected - stats.distinct);
      repeated = stats.deliveries - stats.distinct;
    }
    return { rps, answered, errors, undelivered, repeated };
  } finally {
    await gw.stop();
  }
}

export async function run(redisUrl: string): Promise<BenchRow[]> {
  const receiver = await Receiver.start();
  try {
    let round = 0;
    const result = await paired(
      () => endToEnd(redisUrl, `bench-webhooks-off-${round}`, undefined),
      () => endToEnd(redisUrl, `bench-webhooks-on-${round++}`, receiver),
    );
    const rounds = result.rounds;
    const all = rounds.flatMap((r) => [r.baseline, r.subject]);
    return [
      pairedRow('webhooks: end to end with a message.created subscription vs none', 'msg/s', result),
      countRow(
        'webhooks: events not delivered within 60 s of the last reply',
        'count',
        rounds.reduce((s, r) => s + r.subject.undelivered, 0),
      ),
      {
        scenario: 'webhooks: deliveries repeated (at least once: a retry after a lost answer)',
        metric: 'count',
        value: rounds.reduce((s, r) => s + r.subject.repeated, 0),
      },
      countRow(
        'webhooks: errors and non-2xx',
        'count',
        all.reduce((s, r) => s + r.errors, 0),
      ),
    ];
  } finally {
    receiver.close();
  }
}
