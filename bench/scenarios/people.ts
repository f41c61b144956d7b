/**
 * What the people half adds to the message path: every bot request carries the customer's contact
 * (two store reads per message: the conversation's contact link and the contact), and every message
 * is checked against the handoff state and the handoff keywords before the bot is asked. End to end
 * (ingest, bot, reply stored) with both, against the same gateway with the contact lookup left out and
 * no keywords, measured in alternating rounds of the same run, each round on a gateway of its own.
 */
import { ADAPTERS } from '../../adapters/index.js';
import { loadConfig } from '../../config/load.js';
import { createGateway } from '../../src/gateway.js';
import { createLogger } from '../../src/logger.js';
import type { Bot, BotRequest, BotResponse } from '../../src/pipeline/bot/types.js';
import {
  apiConversations,
  apiEndToEnd,
  type BenchRow,
  countRow,
  paired,
  pairedRow,
  queueDrained,
} from '../lib.js';

const KEY = 'bench-people-key-0123456789abcdef';
const CONNECTIONS = 50;
const DURATION_S = Number(process.env.BENCH_DURATION_S ?? 5);
const CONVERSATIONS = 100;

/** Answers every message and counts what it saw, and how many requests carried a contact. */
class CountingBot implements Bot {
  readonly kind = 'demo' as const;
  readonly seen = new Set<string>();
  withContact = 0;

  async reply({ message, contact }: BotRequest): Promise<BotResponse> {
    this.seen.add(message.id);
    if (contact) this.withContact += 1;
    return { replies: [{ text: `You said: ${message.text}` }] };
  }
}

async function endToEnd(redisUrl: string, prefix: string, features: boolean) {
  const config = loadConfig(
    {
      REDIS_URL: redisUrl,
      REDIS_KEY_PREFIX: prefix,
      API_KEYS: KEY,
      QUEUE_MAX_PENDING: '10000000',
      LOG_LEVEL: 'silent',
      // One key sends the whole load: the per-key limit is measured in its own row (limits.ts).
      RATE_LIMIT_PER_MIN: '0',
      // Words the load never says: each message is matched, none hands over.
      ...(features ? { HANDOFF_KEYWORDS: 'human,agent,talk to a person' } : {}),
    },
    ADAPTERS,
  );
  const bot = new CountingBot();
  const gw = await createGateway(config, createLogger('silent'), { bot });
  // The path without it: the engine asks the same contacts service, which here answers at once.
  if (!features) gw.deps.contacts.forBot = async () => undefined;
  const url = await gw.start(0, '127.0.0.1');
  try {
    const headers = { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' };
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
    return { rps, bot, errors };
  } finally {
    await gw.stop();
  }
}

/**
 * Ingest through the shared accept path (`ingest.accept`, as every channel adapter calls it) for
 * customers who write from two channel threads each (SMS and WhatsApp from one number), in one
 * scope or the other: in channel scope each thread is its own conversation, in contact scope both
 * join the contact's. Only the first message of a thread resolves anything; the rest take the ref
 * cache in both scopes, so the row shows what contact scope costs the steady state.
 */
async function ingestIn(redisUrl: string, prefix: string, scope: 'channel' | 'contact') {
  const config = loadConfig(
    {
      REDIS_URL: redisUrl,
      REDIS_KEY_PREFIX: prefix,
      API_KEYS: KEY,
      QUEUE_MAX_PENDING: '10000000',
      LOG_LEVEL: 'silent',
      RATE_LIMIT_PER_MIN: '0',
      CONVERSATION_SCOPE: scope,
    },
    ADAPTERS,
  );
  const bot = new CountingBot();
  const gw = await createGateway(config, createLogger('silent'), { bot });
  await gw.start(0, '127.0.0.1');
  try {
    const { ingest } = gw.deps;
    let n = 0;
    let errors = 0;
    const send = (i: number) => {
      const number = `+1415555${String(Math.floor(i / 2) % CONVERSATIONS).padStart(4, '0')}`;
      const channel = i % 2 === 0 ? ('sms' as const) : ('whatsapp' as const);
      return ingest
        .accept({
          channel,
          channelRef: `+15005550006|${number}`,
          dedupeKey: `${prefix}-${i}`,
          from: { id: `${channel}:${number}`, role: 'user', address: number },
          identity: { verified: true, source: channel === 'sms' ? 'twilio' : 'twilio_waid' },
          message: { text: `message ${i}` },
        })
        .catch(() => {
          errors += 1;
        });
    };
    const start = performance.now();
    const until = start + DURATION_S * 1000;
    await Promise.all(
      Array.from({ length: CONNECTIONS }, async () => {
        // Every thread gets its first message however short the run.
        while (n < 2 * CONVERSATIONS || performance.now() < until) await send(n++);
      }),
    );
    await queueDrained(gw.deps.store);
    const rps = bot.seen.size / ((performance.now() - start) / 1000);
    const conversations = (await gw.deps.store.listConversations({ take: 200, order: 'asc' })).items.length;
    return { rps, errors, conversations };
  } finally {
    await gw.stop();
  }
}

export async function run(redisUrl: string): Promise<BenchRow[]> {
  let round = 0;
  const result = await paired(
    () => endToEnd(redisUrl, `bench-people-off-${round}`, false),
    () => endToEnd(redisUrl, `bench-people-on-${round++}`, true),
  );
  const on = result.rounds.map((r) => r.subject);
  const off = result.rounds.map((r) => r.baseline);
  // Without a contact on the requests the comparison would measure nothing.
  if (on.some((r) => r.bot.withContact === 0)) throw new Error('no bot request carried a contact');
  if (off.some((r) => r.bot.withContact > 0)) throw new Error('the baseline still looked contacts up');
  let scopeRound = 0;
  const scoped = await paired(
    () => ingestIn(redisUrl, `bench-scope-channel-${scopeRound}`, 'channel'),
    () => ingestIn(redisUrl, `bench-scope-contact-${scopeRound++}`, 'contact'),
  );
  // Each scope must have done what it says: two threads a customer, one conversation or two each.
  if (scoped.rounds.some((r) => r.baseline.conversations !== 2 * CONVERSATIONS))
    throw new Error(
      `channel scope did not keep a conversation per thread: ${scoped.rounds.map((r) => r.baseline.conversations)}`,
    );
  if (scoped.rounds.some((r) => r.subject.conversations !== CONVERSATIONS))
    throw new Error(
      `contact scope did not keep one conversation per contact: ${scoped.rounds.map((r) => r.subject.conversations)}`,
    );
  return [
    pairedRow(
      'people: end to end with contact in the bot request and handoff checks vs without',
      'msg/s',
      result,
    ),
    countRow(
      'people: errors and non-2xx',
      'count',
      [...on, ...off].reduce((n, r) => n + r.errors, 0),
    ),
    pairedRow('people: ingest and reply in contact scope vs channel scope', 'msg/s', scoped),
    countRow(
      'people: scope ingest errors',
      'count',
      scoped.rounds.reduce((n, r) => n + r.subject.errors + r.baseline.errors, 0),
    ),
  ];
}
