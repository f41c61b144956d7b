/**
 * The baseline for the accept's latency: a bare Express 5 endpoint that parses the same JSON body and
 * runs one EVALSHA of the gateway's own `accept` script per request (same keys, arguments and Redis
 * work: dedupe, seq, message hash, seq index, queue, schedule) on an auto-pipelined ioredis connection
 * to the same Redis, as the gateway's store does. What is left between the two is the gateway's own
 * handling: authentication, validation, the pipeline and the reply. The Slack variant
 * ({@link startBareSlackAccept}) reads the raw body and checks the v0 signature first, as the adapter must.
 */
import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { Redis } from 'ioredis';
import { verifySlackRequest } from '../adapters/slack/verify.js';
import { KeyLayout } from '../src/store/redis/keys.js';
import { SCRIPTS } from '../src/store/redis/scripts.js';

/** The store's default partition count. */
export const PARTITIONS = 16;

export interface BareAccept {
  url: string;
  server: Server;
  /** Conversation ids that exist in this baseline's key space. */
  conversations: string[];
  close(): Promise<void>;
}

/** One EVALSHA of the store's own accept script, as the gateway's store sends it, on `redis`. */
export function acceptScript(redis: Redis, prefix: string) {
  const script = SCRIPTS.find((s) => s.name === 'accept')!;
  redis.defineCommand('bareAccept', { lua: script.lua, numberOfKeys: script.numberOfKeys });
  const accept = (
    redis as unknown as Record<string, (...args: (string | number)[]) => Promise<unknown>>
  ).bareAccept!.bind(redis);
  const keys = new KeyLayout(prefix, PARTITIONS);
  return {
    /** Makes the conversations the accepts go to. */
    create: (conversations: readonly string[]) =>
      Promise.all(
        conversations.map((id) =>
          redis.hset(keys.conversation(id).conv, 'sessionId', `sess_${id}`, 'seq', '0'),
        ),
      ),
    /**
     * Stores `text` in `conversationId` under `dedupeKey` (or finds it stored): the message id, the
     * script's outcome (`ok`, or `dup` for a known dedupe key) and the seq.
     */
    run: async (conversationId: string, text: string, dedupeKey: string) => {
      const now = Date.now();
      const at = new Date(now).toISOString();
      const k = keys.conversation(conversationId);
      const id = `msg_${randomUUID()}`;
      const message = JSON.stringify({
        id,
        conversationId,
        direction: 'inbound',
        type: 'user',
        text,
        createdAt: at,
      });
      const reply = (await accept(
        k.conv,
        k.msgs,
        k.seqidx,
        k.queue,
        k.sched,
        k.pending,
        keys.dedupe(conversationId, dedupeKey),
        conversationId,
        id,
        message,
        JSON.stringify({ state: 'queued', attempts: 0, at }),
        86_400,
        1_800_000,
        now,
        at,
        `sess_${randomUUID()}`,
        '0',
        10_000_000,
        '0',
      )) as [string, number];
      return { id, outcome: reply[0], seq: reply[1] };
    },
  };
}

async function listen(app: express.Express, redis: Redis) {
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    server,
    close: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      redis.disconnect();
    },
  };
}

export async function startBareAccept(
  redisUrl: string,
  prefix: string,
  conversationCount: number,
): Promise<BareAccept> {
  const redis = new Redis(redisUrl, { enableAutoPipelining: true, maxRetriesPerRequest: 1 });
  const accept = acceptScript(redis, prefix);
  const conversations = Array.from({ length: conversationCount }, (_, i) => `conv_bare_${i}`);
  await accept.create(conversations);

  const app = express();
  app.use(express.json({ limit: '1mb' }));
  app.post('/bare-accept', async (req, res) => {
    const body = req.body as { conversationId: string; text: string; clientMessageId: string };
    try {
      const { id, seq } = await accept.run(body.conversationId, body.text, `client:${body.clientMessageId}`);
      res.status(202).json({ id, seq });
    } catch {
      res.status(500).json({ error: 'accept failed' });
    }
  });
  return { ...(await listen(app, redis)), conversations };
}

/**
 * The Slack ingest's baseline: bare Express reading the raw body, the adapter's own v0 signature and
 * timestamp check over it, `JSON.parse`, and one EVALSHA of the accept script into the DM channel's
 * conversation (made up front) under the message's identity as the dedupe key, as the adapter keys it;
 * a retry of a stored message takes the script's duplicate path, as in the gateway. Answers 200, empty.
 * No classification, profile, index writes, events or metrics: those are the gateway's own handling.
 */
export async function startBareSlackAccept(
  redisUrl: string,
  prefix: string,
  signingSecret: string,
  channels: readonly string[],
): Promise<BareAccept> {
  const redis = new Redis(redisUrl, { enableAutoPipelining: true, maxRetriesPerRequest: 1 });
  const accept = acceptScript(redis, prefix);
  const conversations = channels.map((c) => `conv_bare_${c}`);
  await accept.create(conversations);

  const app = express();
  app.use(express.raw({ type: () => true, limit: '1mb' }));
  app.post('/bare-slack', async (req, res) => {
    const rawBody = req.body as Buffer;
    const verified = verifySlackRequest({
      signingSecret,
      rawBody,
      signature: req.get('x-slack-signature'),
      timestamp: req.get('x-slack-request-timestamp'),
    });
    if (!verified.ok) {
      res.status(401).end();
      return;
    }
    try {
      const body = JSON.parse(rawBody.toString('utf8')) as {
        team_id: string;
        event: { channel: string; ts: string; text: string };
      };
      const { channel, ts, text } = body.event;
      await accept.run(`conv_bare_${channel}`, text, `slack:${body.team_id}:${channel}:${ts}`);
      res.status(200).end();
    } catch {
      res.status(500).end();
    }
  });
  return { ...(await listen(app, redis)), conversations };
}
