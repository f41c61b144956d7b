/**
 * A small web-chat test client on the real `ws` package: records every frame and the close, and waits
 * for frames with a deadline (no sleeps). Also mints visitor tokens with jsonwebtoken.
 */
import jwt from 'jsonwebtoken';
import WebSocket from 'ws';

export const WEBCHAT_SECRET = 'webchat-test-secret-0123456789-abcdefghij';
export const ORIGIN = 'http://shop.test';

// biome-ignore lint/suspicious/noExplicitAny: frames are untyped JSON in tests
export type Frame = Record<string, any>;

/** An HS256 visitor token; `claims` override the defaults (sub, 10-minute exp). */
export function visitorToken(
  claims: Record<string, unknown> = {},
  secret: string = WEBCHAT_SECRET,
  options: jwt.SignOptions = {},
): string {
  const now = Math.floor(Date.now() / 1000);
  return jwt.sign({ sub: 'visitor-1', iat: now, exp: now + 600, ...claims }, secret, {
    algorithm: 'HS256',
    ...options,
  });
}

/** Polls `check` until it returns a truthy value or the deadline passes. */
export async function until<T>(
  check: () => T | Promise<T>,
  timeoutMs = 5_000,
  what = 'condition',
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export interface ConnectOptions {
  /** Offered as subprotocol `bearer.<token>`; omit to authenticate with an `auth` frame. */
  token?: string;
  origin?: string | null;
  protocols?: string[];
  autoPong?: boolean;
}

export class ChatClient {
  readonly ws: WebSocket;
  readonly frames: Frame[] = [];
  close: { code: number; reason: string } | null = null;
  /** HTTP status when the upgrade was refused. */
  refusedStatus: number | null = null;
  readonly opened: Promise<void>;
  readonly closed: Promise<{ code: number; reason: string }>;

  constructor(baseUrl: string, opts: ConnectOptions = {}) {
    const protocols = opts.protocols ?? ['switchboard.v1', ...(opts.token ? [`bearer.${opts.token}`] : [])];
    const origin = opts.origin === undefined ? ORIGIN : opts.origin;
    this.ws = new WebSocket(`${baseUrl.replace(/^http/, 'ws')}/webchat`, protocols, {
      ...(origin !== null ? { origin } : {}),
      autoPong: opts.autoPong ?? true,
    });
    this.ws.on('message', (data) => this.frames.push(JSON.parse(data.toString()) as Frame));
    this.ws.on('unexpected-response', (_req, res) => {
      this.refusedStatus = res.statusCode ?? null;
      res.resume();
      this.ws.terminate();
    });
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', () => resolve());
      this.ws.once('error', reject);
    });
    // Awaited only by tests that expect the upgrade to succeed.
    this.opened.catch(() => undefined);
    this.closed = new Promise((resolve) => {
      this.ws.once('close', (code, reason) => {
        this.close = { code, reason: reason.toString() };
        resolve(this.close);
      });
    });
    // Refused upgrades surface as errors; tests look at refusedStatus / close instead.
    this.ws.on('error', () => undefined);
  }

  /** Connects with a subprotocol token and waits for the `ready` frame. */
  static async ready(baseUrl: string, opts: ConnectOptions = {}): Promise<ChatClient> {
    const client = new ChatClient(baseUrl, { token: visitorToken(), ...opts });
    await client.next('ready');
    return client;
  }

  send(frame: Frame | string): void {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame));
  }

  /** Frames received after index `from` matching `pred`. */
  find(pred: (f: Frame) => boolean, from = 0): Frame[] {
    return this.frames.slice(from).filter(pred);
  }

  /** Waits for the first frame of `type` (after index `from`) that matches `pred`. */
  async next(
    type: string,
    pred: (f: Frame) => boolean = () => true,
    from = 0,
    timeoutMs = 5_000,
  ): Promise<Frame> {
    return until(
      () => {
        if (this.close && !this.frames.slice(from).some((f) => f.type === type && pred(f))) {
          throw new Error(
            `socket closed (${this.close.code} ${this.close.reason}) while waiting for ${type}`,
          );
        }
        return this.frames.slice(from).find((f) => f.type === type && pred(f));
      },
      timeoutMs,
      `${type} frame`,
    );
  }

  /** Sends a message and waits for its ack. */
  async say(text: string, clientMessageId = `c-${Math.random().toString(36).slice(2)}`): Promise<Frame> {
    const from = this.frames.length;
    this.send({ type: 'message', clientMessageId, text });
    return this.next('ack', (f) => f.clientMessageId === clientMessageId, from);
  }

  /** Waits for a bot message whose text matches. */
  async botSays(text: string, from = 0): Promise<Frame> {
    return this.next('message', (f) => f.message.type === 'bot' && f.message.text === text, from);
  }

  async end(): Promise<void> {
    if (this.ws.readyState === WebSocket.CONNECTING) this.ws.terminate();
    if (this.ws.readyState !== WebSocket.OPEN) return;
    this.ws.close(1000);
    await this.closed;
  }
}
