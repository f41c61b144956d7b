/**
 * A CRM-side webhook receiver on loopback: verifies every delivery with the `standardwebhooks`
 * package (an implementation written by others, timestamp tolerance included), records it, and
 * answers as told: 2xx, any status, a redirect, 410, a hang, a connection reset, or a 2xx after a
 * delay (a slow CRM), counting the requests in flight at once.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { Webhook } from 'standardwebhooks';
import type { WebhookEvent } from '../../src/webhooks/events.js';
import { eventually } from './eventually.js';

export type ReceiverMode =
  | { kind: 'ok'; status?: number }
  | { kind: 'status'; status: number; headers?: Record<string, string> }
  | { kind: 'redirect'; location: string; status?: number }
  | { kind: 'hang' }
  | { kind: 'reset' }
  | { kind: 'slow'; delayMs: number };

export interface ReceivedDelivery {
  webhookId: string;
  timestamp: number;
  signature: string;
  raw: string;
  event: WebhookEvent;
  /** The Host header (the URL's host, whatever address the connection went to). */
  host: string;
  /** Indexes into `secrets` of the secrets that verified this delivery (standardwebhooks `verify`). */
  verifiedWith: number[];
  /** How the receiver answered. */
  answered: ReceiverMode['kind'];
  /** The W3C `traceparent` header, when the gateway traces (SPEC §12). */
  traceparent?: string;
  at: number;
}

export class WebhookReceiver {
  readonly server: Server;
  /** Secrets to verify with; the test sets them once the gateway has shown the secret. */
  secrets: string[] = [];
  mode: ReceiverMode = { kind: 'ok' };
  /** Answers for the next requests, one each, before falling back to `mode`. */
  readonly plan: ReceiverMode[] = [];
  /** Every request, whatever the answer. */
  readonly received: ReceivedDelivery[] = [];
  /** Requests that failed verification under every secret, with the reasons. */
  readonly unverified: string[] = [];
  readonly #sockets = new Set<Socket>();
  #url = '';
  /** Requests being answered now, and the most there ever were at once. */
  inFlight = 0;
  maxInFlight = 0;

  private constructor() {
    this.server = createServer((req, res) => void this.#handle(req, res));
    this.server.on('connection', (socket) => {
      this.#sockets.add(socket);
      socket.on('close', () => this.#sockets.delete(socket));
    });
  }

  static async start(): Promise<WebhookReceiver> {
    const receiver = new WebhookReceiver();
    await new Promise<void>((resolve) => receiver.server.listen(0, '127.0.0.1', resolve));
    const { port } = receiver.server.address() as AddressInfo;
    receiver.#url = `http://127.0.0.1:${port}`;
    return receiver;
  }

  /** The receiver's base URL; append a path to tell endpoints apart. */
  get url(): string {
    return this.#url;
  }

  get port(): number {
    return Number(new URL(this.#url).port);
  }

  /** Deliveries answered with a 2xx. */
  get accepted(): ReceivedDelivery[] {
    return this.received.filter((d) => d.answered === 'ok' || d.answered === 'slow');
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.inFlight += 1;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    let counted = true;
    const done = () => {
      if (counted) this.inFlight -= 1;
      counted = false;
    };
    res.once('close', done);
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    const headers = {
      'webhook-id': String(req.headers['webhook-id'] ?? ''),
      'webhook-timestamp': String(req.headers['webhook-timestamp'] ?? ''),
      'webhook-signature': String(req.headers['webhook-signature'] ?? ''),
    };
    const verifiedWith: number[] = [];
    const reasons: string[] = [];
    for (const [i, secret] of this.secrets.entries()) {
      try {
        new Webhook(secret).verify(raw, headers);
        verifiedWith.push(i);
      } catch (err) {
        reasons.push((err as Error).message);
      }
    }
    if (verifiedWith.length === 0) this.unverified.push(reasons.join('; ') || 'no secret configured');
    const mode = this.plan.shift() ?? this.mode;
    this.received.push({
      webhookId: headers['webhook-id'],
      timestamp: Number(headers['webhook-timestamp']),
      signature: headers['webhook-signature'],
      raw,
      event: JSON.parse(raw) as WebhookEvent,
      host: String(req.headers.host ?? ''),
      verifiedWith,
      answered: mode.kind,
      ...(typeof req.headers.traceparent === 'string' ? { traceparent: req.headers.traceparent } : {}),
      at: Date.now(),
    });
    switch (mode.kind) {
      case 'ok':
        res.writeHead(mode.status ?? 204).end();
        return;
      case 'status':
        res.writeHead(mode.status, mode.headers).end('nope');
        return;
      case 'redirect':
        res.writeHead(mode.status ?? 307, { location: mode.location }).end();
        return;
      case 'hang':
        // Never answers; close() destroys the socket.
        return;
      case 'reset':
        req.socket.resetAndDestroy();
        return;
      case 'slow':
        setTimeout(() => res.writeHead(204).end(), mode.delayMs);
        return;
    }
  }

  /** Waits until `predicate` holds over the received deliveries. */
  async waitFor(
    predicate: (received: ReceivedDelivery[]) => boolean,
    timeoutMs = 10_000,
  ): Promise<ReceivedDelivery[]> {
    return eventually(() => predicate(this.received) && this.received, timeoutMs, 20);
  }

  /** Stops listening and drops every connection (hung ones included). */
  async close(): Promise<void> {
    if (!this.server.listening) return;
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** Listens again on the same port after {@link close}: the receiver was down and is back. */
  async reopen(): Promise<void> {
    const port = Number(new URL(this.#url).port);
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, '127.0.0.1', () => {
        this.server.off('error', reject);
        resolve();
      });
    });
  }
}
