/**
 * A recording HTTP bot on loopback. It verifies every request with the `standardwebhooks` package (an
 * implementation independent of ours) and answers according to a mode the test sets.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';
import { readBody } from '../helpers/http.js';

export const BOT_SECRET = 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw';

export interface BotCall {
  webhookId: string;
  conversationId: string;
  messageId: string;
  seq: number;
  text: string;
  historySize: number;
  /** The texts of the history sent, oldest first. */
  history: string[];
  /** The request's `resumed` flag (first request after a handoff ended). */
  resumed: boolean;
  /** The request's `test` flag (`POST /v1/bot/test`). */
  test: boolean;
  /** The request's W3C `traceparent` header, when tracing is on (SPEC §12). */
  traceparent?: string;
  at: number;
}

export type BotMode =
  | { kind: 'echo'; delayMs?: number | ((call: BotCall) => number) }
  | { kind: 'status'; status: number; retryAfter?: string }
  | { kind: 'hang' }
  | { kind: 'garbage' }
  | { kind: 'wrong-shape' }
  | { kind: 'huge' }
  | { kind: 'handoff'; delayMs?: number; reason?: string };

export class FakeBot {
  readonly calls: BotCall[] = [];
  readonly rejected: string[] = [];
  mode: BotMode = { kind: 'echo' };
  /** Modes to use for the next calls, in order, before falling back to `mode`. */
  readonly script: BotMode[] = [];
  #server: Server;
  #hung = new Set<() => void>();
  url = '';

  private constructor(secret: string) {
    const verifier = new Webhook(secret);
    this.#server = createServer(async (req, res) => {
      const body = await readBody(req);
      let payload: {
        message: { id: string; seq: number; text: string; conversationId: string };
        history: Array<{ text: string }>;
        resumed?: boolean;
        test?: boolean;
      };
      try {
        payload = verifier.verify(body, {
          'webhook-id': String(req.headers['webhook-id'] ?? ''),
          'webhook-timestamp': String(req.headers['webhook-timestamp'] ?? ''),
          'webhook-signature': String(req.headers['webhook-signature'] ?? ''),
        }) as typeof payload;
      } catch (err) {
        this.rejected.push((err as Error).message);
        res.writeHead(401).end();
        return;
      }
      const call: BotCall = {
        webhookId: String(req.headers['webhook-id']),
        conversationId: payload.message.conversationId,
        messageId: payload.message.id,
        seq: payload.message.seq,
        text: payload.message.text,
        historySize: payload.history.length,
        history: payload.history.map((m) => m.text),
        resumed: payload.resumed === true,
        test: payload.test === true,
        ...(typeof req.headers.traceparent === 'string' ? { traceparent: req.headers.traceparent } : {}),
        at: Date.now(),
      };
      this.calls.push(call);
      const mode = this.script.shift() ?? this.mode;
      switch (mode.kind) {
        case 'echo': {
          const delay = typeof mode.delayMs === 'function' ? mode.delayMs(call) : (mode.delayMs ?? 0);
          if (delay > 0) await new Promise((r) => setTimeout(r, delay));
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ replies: [{ text: `re: ${payload.message.text}` }] }));
          return;
        }
        case 'status':
          res.writeHead(mode.status, mode.retryAfter ? { 'retry-after': mode.retryAfter } : {});
          res.end('{}');
          return;
        case 'hang':
          await new Promise<void>((resolve) => {
            this.#hung.add(resolve);
            res.on('close', () => resolve());
          });
          res.destroy();
          return;
        case 'garbage':
          res.writeHead(200, { 'content-type': 'text/html' });
          res.end('<html>not json</html>');
          return;
        case 'wrong-shape':
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ reply: 'hello' }));
          return;
        case 'huge':
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ replies: [{ text: 'x'.repeat(9_000) }], padding: 'y'.repeat(400_000) }));
          return;
        case 'handoff':
          if (mode.delayMs) await new Promise((resolve) => setTimeout(resolve, mode.delayMs));
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(
            JSON.stringify({
              replies: [{ text: 'A human will take over.' }],
              handoff: true,
              ...(mode.reason ? { handoffReason: mode.reason } : {}),
            }),
          );
          return;
      }
    });
  }

  /** Starts a bot that verifies with `secret` (by default {@link BOT_SECRET}). */
  static async start(secret = BOT_SECRET): Promise<FakeBot> {
    const bot = new FakeBot(secret);
    await new Promise<void>((resolve) => bot.#server.listen(0, '127.0.0.1', () => resolve()));
    bot.url = `http://127.0.0.1:${(bot.#server.address() as AddressInfo).port}/bot`;
    return bot;
  }

  /** Ends every hanging request (their connections are dropped). */
  releaseHung(): void {
    for (const release of this.#hung) release();
    this.#hung.clear();
  }

  callsFor(messageId: string): BotCall[] {
    return this.calls.filter((c) => c.messageId === messageId);
  }

  async close(): Promise<void> {
    this.releaseHung();
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
