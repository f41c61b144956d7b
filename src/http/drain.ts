/**
 * @module The HTTP side of graceful shutdown (SPEC §4.6, docs/shutdown.md) and the answer to upgrade
 * requests nobody serves.
 *
 * Every socket the server accepts is tracked, upgraded ones included: Node stops tracking a socket once
 * it is handed to an `upgrade` listener, so `closeAllConnections()` never reaches a WebSocket, and
 * `server.close()` waits for them without a bound. While draining, the listener stays open and every
 * request (on a kept-alive connection or a new one) is answered `503` with `Connection: close` and
 * `Retry-After`, never dropped; requests already running finish. At the deadline whatever is still open
 * is destroyed.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, RequestListener, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { ERRORS } from '../core/errors.js';
import { problemType } from './errors.js';

/** Seconds a client is told to wait before retrying (another process, or this one restarted). */
export const DRAIN_RETRY_AFTER_S = 1;
/** Paths still served while draining: liveness, and readiness (which then answers 503). */
const SERVED_WHILE_DRAINING = new Set(['/healthz', '/readyz']);
/** How long an answer during the drain waits for the request body it discards, so the close is clean. */
const BODY_WAIT_MS = 1_000;
/** RFC 6455 §4.2.1: the key is 16 random bytes in base64. */
const WEBSOCKET_KEY = /^[+/0-9A-Za-z]{22}==$/;

export class HttpDrain {
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  readonly #responses = new Set<ServerResponse>();
  #draining = false;

  constructor(server: Server) {
    this.#server = server;
    server.on('connection', (socket: Socket) => {
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
    });
  }

  /** Sockets open on the server, upgraded ones included. */
  /** True once shutdown has begun: every later request is answered 503. */
  get draining(): boolean {
    return this.#draining;
  }

  get openSockets(): number {
    return this.#sockets.size;
  }

  /** Requests being answered. */
  get inFlight(): number {
    return this.#responses.size;
  }

  /** The server's request listener: `app` until the drain starts, then the drain's answers. */
  handler(app: RequestListener): RequestListener {
    return (req, res) => {
      this.#responses.add(res);
      res.once('close', () => this.#responses.delete(res));
      if (!this.#draining) {
        app(req, res);
        return;
      }
      res.setHeader('Connection', 'close');
      if (SERVED_WHILE_DRAINING.has(pathOf(req.url))) app(req, res);
      else refuseWhileDraining(req, res);
    };
  }

  /**
   * Starts the drain: requests still running finish and close their connection; later ones get 503.
   * Idle kept-alive connections are left open on purpose: closing one races a request the client may
   * be sending on it, which would be lost unanswered. Its next request is answered 503 instead.
   */
  begin(): void {
    this.#draining = true;
    for (const res of this.#responses) if (!res.headersSent) res.setHeader('Connection', 'close');
  }

  /** Resolves when no request is being answered, or at `deadline` (epoch ms). */
  async settle(deadline: number): Promise<void> {
    while (this.#responses.size > 0 && Date.now() < deadline)
      await delay(Math.min(50, deadline - Date.now()));
  }

  /**
   * Stops listening and closes idle connections, waits for the rest to end until `deadline`, then
   * destroys whatever is still open (slow requests, half-open upgrades, WebSockets that did not finish
   * their closing handshake). Resolves when the server is closed.
   */
  async close(deadline: number): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#server.closeIdleConnections();
    while (this.#sockets.size > 0 && Date.now() < deadline) {
      await delay(Math.min(50, Math.max(0, deadline - Date.now())));
      this.#server.closeIdleConnections();
    }
    for (const socket of this.#sockets) socket.destroy();
    await closed;
  }
}

/**
 * Node hands an upgrade request to the `upgrade` listeners and does nothing else with it, so a request
 * no listener takes holds its socket open for good. Adapters take their upgrades synchronously (they
 * answer, or hand the socket to their WebSocket server, within the event), so this listener, registered
 * after theirs, answers every socket left untouched: 400 when the request is not a well-formed WebSocket
 * handshake, 404 otherwise, and the socket is closed.
 */
export function answerUnclaimedUpgrade(req: IncomingMessage, socket: Duplex): void {
  const s = socket as Socket;
  if (s.destroyed || s.writableEnded || s.writableLength > 0 || s.bytesWritten > 0) return;
  if (isWebSocketHandshake(req)) refuseUpgrade(socket, 404, 'Not Found');
  else refuseUpgrade(socket, 400, 'Bad Request');
}

function isWebSocketHandshake(req: IncomingMessage): boolean {
  const version = req.headers['sec-websocket-version'];
  return (
    req.method === 'GET' &&
    req.headers.upgrade?.toLowerCase() === 'websocket' &&
    WEBSOCKET_KEY.test(req.headers['sec-websocket-key'] ?? '') &&
    (version === '13' || version === '8')
  );
}

/** Answers an upgrade request with a plain HTTP error and closes the socket once it is written. */
export function refuseUpgrade(socket: Duplex, status: number, text: string, headers: string[] = []): void {
  const body = `${text}\n`;
  socket.once('finish', () => socket.destroy());
  socket.once('error', () => socket.destroy());
  socket.end(
    [
      `HTTP/1.1 ${status} ${text}`,
      'Connection: close',
      'Content-Type: text/plain; charset=utf-8',
      `Content-Length: ${Buffer.byteLength(body)}`,
      ...headers,
      '',
      body,
    ].join('\r\n'),
  );
}

/** 503 with Retry-After: problem+json under /v1 (the API's error format), plain text elsewhere. */
function refuseWhileDraining(req: IncomingMessage, res: ServerResponse): void {
  let answered = false;
  const answer = () => {
    if (answered || res.headersSent) return;
    answered = true;
    clearTimeout(timer);
    res.statusCode = 503;
    res.setHeader('Retry-After', String(DRAIN_RETRY_AFTER_S));
    const path = pathOf(req.url);
    if (path === '/v1' || path.startsWith('/v1/')) {
      const requestId = randomUUID();
      res.setHeader('X-Request-Id', requestId);
      res.setHeader('Content-Type', 'application/problem+json; charset=utf-8');
      const spec = ERRORS.GW_ERR_SHUTTING_DOWN;
      res.end(
        JSON.stringify({
          type: problemType('GW_ERR_SHUTTING_DOWN'),
          title: spec.title,
          status: spec.status,
          detail: 'The gateway is shutting down; retry, another process will answer',
          code: 'GW_ERR_SHUTTING_DOWN',
          requestId,
          retryAfter: DRAIN_RETRY_AFTER_S,
        }),
      );
    } else {
      res.setHeader('Content-Type', 'text/plain; charset=utf-8');
      res.end('Service Unavailable: shutting down\n');
    }
  };
  // Read (and discard) the body before answering: closing a connection with unread data in it makes
  // the kernel reset it, and the client may lose the answer.
  const timer = setTimeout(answer, BODY_WAIT_MS);
  req.once('end', answer);
  req.once('error', answer);
  req.resume();
}

function pathOf(url: string | undefined): string {
  const value = url ?? '/';
  const q = value.indexOf('?');
  return q === -1 ? value : value.slice(0, q);
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
