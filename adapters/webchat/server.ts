/**
 * @module The `GET /webchat` WebSocket endpoint: checks `Origin` before upgrading, picks the `switchboard.v1`
 * subprotocol (never echoing the `bearer.<jwt>` one), hands each socket to a {@link Session}, and pings
 * every socket on an interval so half-open connections are terminated.
 */
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { WebSocketServer } from 'ws';
import { CLOSE, Session, type SessionDeps } from './session.js';

export const PATH = '/webchat';
export const SUBPROTOCOL = 'switchboard.v1';
const BEARER = 'bearer.';

export interface SocketServerOptions {
  maxFrameBytes: number;
  /** Open sockets per client address, authenticated or not. */
  maxSocketsPerIp: number;
  /** The client's address (proxy-aware); sockets are counted per address. */
  clientAddress(req: IncomingMessage): string;
  heartbeatMs: number;
  logger: Logger;
  /** Whether a page at `origin` may connect; `host` is the request's Host header. */
  originAllowed(origin: string | undefined, host: string | undefined): boolean;
  rejected(reason: string): void;
  session: Omit<SessionDeps, 'logger'>;
}

/** The token offered as subprotocol `bearer.<jwt>`, if any. */
export function offeredToken(header: string | string[] | undefined): string | undefined {
  const value = Array.isArray(header) ? header.join(',') : (header ?? '');
  for (const part of value.split(',')) {
    const p = part.trim();
    if (p.startsWith(BEARER) && p.length > BEARER.length) return p.slice(BEARER.length);
  }
  return undefined;
}

export class SocketServer {
  readonly #opts: SocketServerOptions;
  readonly #wss: WebSocketServer;
  readonly #sessions = new Set<Session>();
  /** Open sockets per client address. */
  readonly #perAddress = new Map<string, number>();
  #heartbeat: NodeJS.Timeout | undefined;
  #closing = false;

  constructor(opts: SocketServerOptions) {
    this.#opts = opts;
    this.#wss = new WebSocketServer({
      noServer: true,
      maxPayload: opts.maxFrameBytes,
      // Compression costs memory per socket and opens compression-oracle questions; chat frames are small.
      perMessageDeflate: false,
      clientTracking: false,
      handleProtocols: (protocols) => (protocols.has(SUBPROTOCOL) ? SUBPROTOCOL : false),
    });
  }

  attach(server: Server): void {
    server.on('upgrade', this.#onUpgrade);
    this.#heartbeat = setInterval(() => {
      for (const session of this.#sessions) session.heartbeat();
    }, this.#opts.heartbeatMs);
    this.#heartbeat.unref();
  }

  /**
   * Refuses new sockets (503; the listener stays attached so they are answered) and closes the open
   * ones with 1001 (the widget reconnects to another process). The gateway destroys what has not
   * finished its closing handshake when its shutdown deadline passes.
   */
  async close(): Promise<void> {
    this.#closing = true;
    clearInterval(this.#heartbeat);
    for (const session of this.#sessions) session.close(CLOSE.GOING_AWAY, 'server shutting down');
    this.#wss.close();
  }

  /** Open sockets in this process. */
  get size(): number {
    return this.#sessions.size;
  }

  readonly #onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const url = req.url ?? '';
    const path = url.split('?', 1)[0];
    if (path !== PATH) return;
    const log = this.#opts.logger;
    if (this.#closing) {
      refuse(socket, 503, 'Service Unavailable', ['Retry-After: 1']);
      return;
    }
    const origin = req.headers.origin;
    if (!this.#opts.originAllowed(origin, req.headers.host)) {
      log.warn(
        { reason: 'origin', detail: `origin ${origin?.slice(0, 200)} not allowed` },
        'web-chat input refused',
      );
      this.#opts.rejected('origin');
      refuse(socket, 403, 'Forbidden');
      return;
    }
    const address = this.#opts.clientAddress(req);
    if ((this.#perAddress.get(address) ?? 0) >= this.#opts.maxSocketsPerIp) {
      log.warn(
        {
          reason: 'too_many_sockets_ip',
          detail: `more than ${this.#opts.maxSocketsPerIp} sockets from one address`,
        },
        'web-chat input refused',
      );
      this.#opts.rejected('too_many_sockets_ip');
      refuse(socket, 429, 'Too Many Requests', ['Retry-After: 30']);
      return;
    }
    const token = offeredToken(req.headers['sec-websocket-protocol']);
    this.#wss.handleUpgrade(req, socket, head, (ws) => {
      // Counted once upgraded (no await since the check above, so concurrent upgrades cannot overshoot).
      this.#perAddress.set(address, (this.#perAddress.get(address) ?? 0) + 1);
      const session = new Session(ws, { ...this.#opts.session, logger: log });
      this.#sessions.add(session);
      ws.once('close', () => {
        this.#sessions.delete(session);
        const left = (this.#perAddress.get(address) ?? 1) - 1;
        if (left > 0) this.#perAddress.set(address, left);
        else this.#perAddress.delete(address);
      });
      session.start(token);
    });
  };
}

/** Answers an upgrade request with a plain HTTP error (the socket was never upgraded). */
function refuse(socket: Duplex, status: number, text: string, headers: string[] = []): void {
  const body = `${text}\n`;
  socket.once('finish', () => socket.destroy());
  socket.end(
    `HTTP/1.1 ${status} ${text}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${headers.map((h) => `${h}\r\n`).join('')}\r\n${body}`,
  );
}
