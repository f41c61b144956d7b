/**
 * Typing indicators (docs/typing.md) on the message path. A backlog of signed WhatsApp messages through
 * Twilio is accepted with the engine off; then an engine drains it, echoing every message through the
 * twilio client to the fake REST API, once with `TWILIO_TYPING_INDICATOR=on` (the default) and once
 * `off`, in paired rounds. Every backlogged message has waited longer than `TYPING_AFTER_MS`, so with
 * indicators on each one gets its indicator the moment its turn comes: the "on" side makes two REST
 * calls a message where "off" makes one. That is the feature's whole price on a busy gateway; on a
 * quiet one, where the bot answers within `TYPING_AFTER_MS`, it is a timer armed and cleared.
 * Correctness rows: every message answered, and no indicator after the reply it precedes.
 */
import twilio from 'twilio';
import { Agent, request } from 'undici';
import { ADAPTERS } from '../../adapters/index.js';
import { loadConfig } from '../../config/load.js';
import { createGateway } from '../../src/gateway.js';
import { createLogger } from '../../src/logger.js';
import {
  ACCOUNT_SID,
  AUTH_TOKEN,
  encodeForm,
  FakeTwilioApi,
  whatsappParams,
} from '../../test/fakes/twilio-api.js';
import { type BenchRow, countRow, paired, pairedRow } from '../lib.js';

const PUBLIC_URL = 'https://chat.example.com';
const PATH = '/webhooks/twilio';
const MESSAGES = Number(process.env.BENCH_TYPING_MESSAGES ?? 2000);
const CUSTOMERS = 200;

let rounds = 0;

interface Drain {
  rps: number;
  answered: number;
  indicators: number;
  /** Indicators that reached the fake after the reply to their message. */
  late: number;
}

function gateway(apiUrl: string, redisUrl: string, prefix: string, typing: 'on' | 'off', engine: boolean) {
  const config = loadConfig(
    {
      REDIS_URL: redisUrl,
      REDIS_KEY_PREFIX: prefix,
      PUBLIC_URL,
      API_KEYS: 'bench-api-key-0123456789abcdef',
      TWILIO_ACCOUNT_SID: ACCOUNT_SID,
      TWILIO_AUTH_TOKEN: AUTH_TOKEN,
      TWILIO_API_URL: apiUrl,
      TWILIO_TYPING_INDICATOR: typing,
      QUEUE_MAX_PENDING: '10000000',
      LOG_LEVEL: 'silent',
      RATE_LIMIT_PER_MIN: '0',
    },
    ADAPTERS,
  );
  return createGateway(config, createLogger('silent'), { startEngine: engine });
}

/** Accepts MESSAGES signed WhatsApp webhooks with the engine off (not timed). */
async function backlog(fake: FakeTwilioApi, redisUrl: string, prefix: string, round: number): Promise<void> {
  const web = await gateway(fake.url, redisUrl, prefix, 'off', false);
  const url = await web.start(0, '127.0.0.1');
  const agent = new Agent({ connections: 16 });
  let next = 0;
  const worker = async () => {
    while (next < MESSAGES) {
      const i = next++;
      const from = `+1415556${String(i % CUSTOMERS).padStart(4, '0')}`;
      const params = whatsappParams({
        MessageSid: `SM${round.toString(16).padStart(4, '0')}${i.toString(16).padStart(28, '0')}`,
        From: `whatsapp:${from}`,
        WaId: from.slice(1),
        Body: `typing bench ${round} ${i}`,
      });
      const res = await request(`${url}${PATH}`, {
        method: 'POST',
        dispatcher: agent,
        body: encodeForm(params),
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          'x-twilio-signature': twilio.getExpectedTwilioSignature(AUTH_TOKEN, `${PUBLIC_URL}${PATH}`, params),
        },
      });
      await res.body.text();
      if (res.statusCode !== 200) throw new Error(`backlog: webhook answered ${res.statusCode}`);
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
  await agent.close();
  await web.stop();
}

/** One round: a backlog, then the time an engine takes to answer all of it. */
async function drain(fake: FakeTwilioApi, redisUrl: string, typing: 'on' | 'off'): Promise<Drain> {
  const round = rounds++;
  const prefix = `bench-typing-${round}`;
  fake.reset();
  await backlog(fake, redisUrl, prefix, round);
  // Past TYPING_AFTER_MS (800 ms by default) for every message of the backlog, the last one included.
  await new Promise((r) => setTimeout(r, 1_000));
  fake.reset();
  const started = performance.now();
  const engine = await gateway(fake.url, redisUrl, prefix, typing, true);
  await engine.start(0, '127.0.0.1');
  const deadline = started + 120_000;
  while (fake.created().length < MESSAGES && performance.now() < deadline) {
    await new Promise((r) => setTimeout(r, 5));
  }
  const elapsed = (performance.now() - started) / 1000;
  await engine.stop();
  const created = fake.created();
  const indicators = fake.typing();
  // The reply to a message goes to its sender; its indicator names the message's SID. An indicator is
  // late when it reached the fake after the reply to the same customer's same message.
  const repliedAt = new Map<string, number>();
  for (const r of created) {
    const n = /typing bench \d+ (\d+)$/.exec(r.fields.Body ?? '')?.[1];
    if (n !== undefined) repliedAt.set(n, r.at);
  }
  let late = 0;
  for (const t of indicators) {
    const n = Number.parseInt((t.fields.messageId ?? '').slice(6), 16);
    const at = repliedAt.get(String(n));
    if (at !== undefined && t.at > at) late += 1;
  }
  return { rps: created.length / elapsed, answered: created.length, indicators: indicators.length, late };
}

export async function run(redisUrl: string): Promise<BenchRow[]> {
  const fake = await FakeTwilioApi.start();
  try {
    const result = await paired(
      () => drain(fake, redisUrl, 'off'),
      () => drain(fake, redisUrl, 'on'),
    );
    const on = result.rounds.map((r) => r.subject);
    const all = result.rounds.flatMap((r) => [r.subject, r.baseline]);
    return [
      pairedRow(
        'typing: WhatsApp backlog answered with indicators on vs off',
        'replies/s',
        result,
        undefined,
      ),
      {
        scenario: 'typing: indicators sent per backlogged message (on)',
        metric: 'ratio',
        value: on.reduce((s, d) => s + d.indicators, 0) / (on.length * MESSAGES),
      },
      countRow(
        'typing: backlogged messages not answered',
        'count',
        all.reduce((s, d) => s + (MESSAGES - d.answered), 0),
      ),
      countRow(
        'typing: indicators after the reply they precede',
        'count',
        on.reduce((s, d) => s + d.late, 0),
      ),
    ];
  } finally {
    await fake.close();
  }
}
