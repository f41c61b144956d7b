/**
 * The floor of the `peer` scenario: the least work a gateway that keeps SPEC §4 must do to answer a
 * signed Twilio SMS, written as bare Express, so the table can say how far any implementation could
 * get on this machine. Per request: the form body parsed as bare Express parses it; the signature
 * checked by the twilio package's own `validateRequest`; one EVALSHA of the gateway's own `accept`
 * script (dedupe, seq, message, index, queue and schedule writes: the durable accept that must come
 * before the 200); the empty TwiML answer. After the answer, in the same process: the demo bot's text,
 * one send through the same twilio client and HTTP transport the gateway uses
 * (`createMessagesClient`), and one HSET recording that the message was answered.
 *
 * With `answer: false` it is the ingest floor: the same up to the 200, and nothing after it.
 *
 * What it leaves out is what the guarantees cost beyond that minimum: no lease or claim, no order
 * between a conversation's messages, no reply stored before it is sent, no delivery status, no
 * recovery after a crash. Every one of those is more work, so the floor's replies a second bound what
 * a gateway with the same transport, in one process, on the same machine could reach.
 */
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { Redis } from 'ioredis';
import twilio from 'twilio';
import { createMessagesClient } from '../adapters/twilio/outbound.js';
import { createLogger } from '../src/logger.js';
import { KeyLayout } from '../src/store/redis/keys.js';
import { ACCOUNT_SID, AUTH_TOKEN } from '../test/fakes/twilio-api.js';
import { acceptScript, PARTITIONS } from './accept-baseline.js';

export interface Floor {
  url: string;
  /** Resolves when every accepted message has been answered. */
  drained(): Promise<void>;
  /** Requests refused for their signature, and sends or writes that failed. */
  failures(): { forged: number; failed: number };
  close(): Promise<void>;
}

/** The sender's conversation: the floor keeps one per number, seeded before the load. */
function conversationOf(from: string): string {
  return `conv_floor_${from.replace(/\D/g, '')}`;
}

export async function startFloor(opts: {
  apiUrl: string;
  redisUrl: string;
  prefix: string;
  /** The URL Twilio signs (the public URL the webhook is configured with). */
  signedUrl: string;
  /** The numbers that will write, so their conversations exist before the load. */
  senders: readonly string[];
  /** False for the ingest floor: the accept and the 200, no reply (the gateway's engine off). */
  answer?: boolean;
}): Promise<Floor> {
  const answering = opts.answer ?? true;
  const redis = new Redis(opts.redisUrl, { enableAutoPipelining: true, maxRetriesPerRequest: 1 });
  const keys = new KeyLayout(opts.prefix, PARTITIONS);
  const accept = acceptScript(redis, opts.prefix);
  await accept.create(opts.senders.map(conversationOf));
  const client = createMessagesClient(ACCOUNT_SID, AUTH_TOKEN, opts.apiUrl, createLogger('silent'));
  let inFlight = 0;
  let forged = 0;
  let failed = 0;
  let idle: (() => void) | undefined;

  const answer = async (conversationId: string, seq: number, from: string, to: string, text: string) => {
    try {
      await client.create({ to: from, from: to, body: `You said: ${text}`, statusCallback: opts.signedUrl });
      await redis.hset(keys.conversation(conversationId).conv, 'answered', seq);
    } catch {
      failed++;
    } finally {
      inFlight--;
      if (inFlight === 0) idle?.();
    }
  };

  const app = express();
  app.use(express.urlencoded({ extended: false, limit: '64kb' }));
  app.post('/webhooks/twilio', async (req, res) => {
    const params = req.body as Record<string, string>;
    const signature = req.get('x-twilio-signature') ?? '';
    if (!twilio.validateRequest(AUTH_TOKEN, signature, opts.signedUrl, params)) {
      forged++;
      res.status(403).end();
      return;
    }
    const conversationId = conversationOf(params.From ?? '');
    try {
      const { outcome, seq } = await accept.run(
        conversationId,
        params.Body ?? '',
        `ext:${params.MessageSid}`,
      );
      if (outcome !== 'ok' && outcome !== 'dup') throw new Error(`accept: ${outcome}`);
      res.type('text/xml').send('<Response/>');
      if (outcome === 'dup' || !answering) return;
      inFlight++;
      void answer(conversationId, seq, params.From ?? '', params.To ?? '', params.Body ?? '');
    } catch {
      failed++;
      res.status(503).end();
    }
  });
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  server.keepAliveTimeout = 60_000;
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/webhooks/twilio`,
    drained: () =>
      inFlight === 0
        ? Promise.resolve()
        : new Promise<void>((resolve) => {
            idle = () => {
              idle = undefined;
              resolve();
            };
          }),
    failures: () => ({ forged, failed }),
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      redis.disconnect();
    },
  };
}
