/**
 * The baseline for the accept's latency: a bare Express 5 endpoint that parses the same JSON body and
 * runs one EVALSHA of the gateway's own `accept` script per request (same keys, arguments and Redis
 * work: dedupe, seq, message hash, seq index, queue, schedule) on an auto-pipelined ioredis connection
 * to the same Redis, as the gateway's store does. What is left between the two is the gateway's own
 * handling: authentication, validation, the pipeline and the reply.
 */
import { randomUUID } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { Redis } from 'ioredis';
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

/**
 * One EVALSHA of the store's `accept` script for a message of `conversationId` (which must exist
 * under `keys`: see {@link seedConversations}), deduplicated on `dedupeId`: the same keys, arguments
 * and Redis work as the gateway's accept. Resolves to the script's reply (`[outcome, seq]`).
 */
export type AcceptOnce = (
  conversationId: string,
  text: string,
  dedupeId: string,
) => Promise<[string, number]>;

export function defineAccept(redis: Redis, keys: KeyLayout): AcceptOnce {
  const script = SCRIPTS.find((s) => s.name === 'accept')!;
  redis.defineCommand('bareAccept', { lua: script.lua, numberOfKeys: script.numberOfKeys });
  const accept = (
    redis as unknown as Record<string, (...args: (string | number)[]) => Promise<unknown>>
  ).bareAccept!.bind(redis);
  return async (conversationId, text, dedupeId) => {
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
    return (await accept(
      k.conv,
      k.msgs,
      k.seqidx,
      k.queue,
      k.sched,
      k.pending,
      keys.dedupe(conversationId, dedupeId),
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
  };
}

/** Creates the conversations `ids` under `keys`, as the gateway would have before their messages. */
export async function seedConversations(
  redis: Redis,
  keys: KeyLayout,
  ids: readonly string[],
): Promise<void> {
  await Promise.all(
    ids.map((id) => redis.hset(keys.conversation(id).conv, 'sessionId', `sess_${id}`, 'seq', '0')),
  );
}

export async function startBareAccept(
  redisUrl: string,
  prefix: string,
  conversationCount: number,
): Promise<BareAccept> {
  const redis = new Redis(redisUrl, { enableAutoPipelining: true, maxRetriesPerRequest: 1 });
  const keys = new KeyLayout(prefix, PARTITIONS);
  const accept = defineAccept(redis, keys);
  const conversations = Array.from({ length: conversationCount }, (_, i) => `conv_bare_${i}`);
  await seedConversations(redis, keys, conversations);

  const app = express();
  app.use(express.json({ limit: '1mb' }));
  app.post('/bare-accept', async (req, res) => {
    const body = req.body as { conversationId: string; text: string; clientMessageId: string };
    try {
      const reply = await accept(body.conversationId, body.text, `client:${body.clientMessageId}`);
      res.status(202).json({ seq: reply[1] });
    } catch {
      res.status(500).json({ error: 'accept failed' });
    }
  });
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    server,
    conversations,
    close: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      redis.disconnect();
    },
  };
}
