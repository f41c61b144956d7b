/**
 * Drain rounds on the Twilio channel, for features on the engine's path: a backlog of signed inbound
 * webhooks is accepted by a gateway with the engine off (not timed), then a gateway with the engine on
 * answers all of it through the twilio client to the fake REST API, timed from its start to the last
 * reply. Each round has a key prefix of its own, so no round sees another's messages.
 */
import twilio from 'twilio';
import { Agent, request } from 'undici';
import { ADAPTERS } from '../adapters/index.js';
import { loadConfig } from '../config/load.js';
import { createGateway } from '../src/gateway.js';
import { createLogger } from '../src/logger.js';
import { ACCOUNT_SID, AUTH_TOKEN, encodeForm, type FakeTwilioApi } from '../test/fakes/twilio-api.js';

const PUBLIC_URL = 'https://chat.example.com';
const PATH = '/webhooks/twilio';

export interface DrainOptions {
  fake: FakeTwilioApi;
  redisUrl: string;
  /** A label for the rounds' key prefixes. */
  label: string;
  messages: number;
  /** The signed webhook's parameters for message `i` of round `round`. */
  params(i: number, round: number): Record<string, string>;
  /** Settings of the answering gateway (the backlog's gateway has the defaults). */
  env?: Record<string, string>;
  /** A pause between the backlog and the drain. */
  pauseMs?: number;
  /** Runs between the backlog and the drain's start (a profiler, say), untimed. */
  beforeDrain?(): Promise<void>;
}

export interface DrainResult {
  rps: number;
  answered: number;
  round: number;
}

let rounds = 0;

function gateway(opts: DrainOptions, prefix: string, engine: boolean, env: Record<string, string> = {}) {
  const config = loadConfig(
    {
      REDIS_URL: opts.redisUrl,
      REDIS_KEY_PREFIX: prefix,
      PUBLIC_URL,
      API_KEYS: 'bench-api-key-0123456789abcdef',
      TWILIO_ACCOUNT_SID: ACCOUNT_SID,
      TWILIO_AUTH_TOKEN: AUTH_TOKEN,
      TWILIO_API_URL: opts.fake.url,
      QUEUE_MAX_PENDING: '10000000',
      LOG_LEVEL: 'silent',
      RATE_LIMIT_PER_MIN: '0',
      ...env,
    },
    ADAPTERS,
  );
  return createGateway(config, createLogger('silent'), { startEngine: engine });
}

async function backlog(opts: DrainOptions, prefix: string, round: number): Promise<void> {
  const web = await gateway(opts, prefix, false);
  const url = await web.start(0, '127.0.0.1');
  const agent = new Agent({ connections: 16 });
  let next = 0;
  const worker = async () => {
    while (next < opts.messages) {
      const params = opts.params(next++, round);
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

/** One round: a backlog, then how fast an engine answers all of it. The fake keeps what it saw. */
export async function drainRound(opts: DrainOptions): Promise<DrainResult> {
  const round = rounds++;
  const prefix = `bench-${opts.label}-${round}`;
  opts.fake.reset();
  await backlog(opts, prefix, round);
  if (opts.pauseMs) await new Promise((r) => setTimeout(r, opts.pauseMs));
  opts.fake.reset();
  await opts.beforeDrain?.();
  const started = performance.now();
  const engine = await gateway(opts, prefix, true, opts.env);
  await engine.start(0, '127.0.0.1');
  const deadline = started + 120_000;
  while (opts.fake.createdCount() < opts.messages && performance.now() < deadline) {
    await new Promise((r) => setTimeout(r, 5));
  }
  const elapsed = (performance.now() - started) / 1000;
  await engine.stop();
  const answered = opts.fake.created().length;
  return { rps: answered / elapsed, answered, round };
}
