/**
 * @module One browser socket speaking the web-chat protocol (SPEC §7): authentication (subprotocol token
 * or a first `auth` frame), in-band token refresh, and the `message` / `typing` / `read` / `resume` frames.
 *
 * Frames of one socket are handled strictly one after another, so two messages sent by one tab get their
 * `seq` in the order they were sent. Every refused frame is answered with an `error` frame or a documented
 * close code, logged once at warn, counted, and never stored.
 */
import type { Logger } from 'pino';
import type { RawData, WebSocket } from 'ws';
import {
  type Attachment,
  type Conversation,
  type EventHub,
  type Ingest,
  isGatewayError,
  type Store,
} from '../../src/core/index.js';
import type { Hub, LocalSocket } from './hub.js';
import { type ClientFrame, type MessageFrame, parseClientFrame, toNewMessage } from './inbound.js';
import { TokenBucket } from './limits.js';
import { isVisible, type ReadyExtras, type ServerFrame, toWireMessage } from './outbound.js';
import type { WebChatFiles } from './uploads.js';
import { type TokenCheck, type Visitor, visitorIdentity } from './verify.js';

/** Close codes (RFC 6455 §7.4.2 leaves 4000-4999 to applications); the adapter README lists them all. */
export const CLOSE = {
  NORMAL: 1000,
  GOING_AWAY: 1001,
  TOO_LARGE: 1009,
  INTERNAL: 1011,
  /** The socket does not read what it is sent (back-pressure limit, docs/webchat-limits.md). */
  TRY_AGAIN_LATER: 1013,
  AUTH_REQUIRED: 4000,
  TOKEN_EXPIRED: 4001,
  TOKEN_INVALID: 4003,
  TOO_MANY_SOCKETS: 4008,
} as const;

/** Messages read per store call while applying read receipts. */
const PAGE = 200;
/** A socket over this many times the send-buffer mark is closed at once, without waiting. */
const HARD_BUFFER_FACTOR = 4;
/** How often a paused replay, or a socket over the mark, looks at its buffer again. */
const BUFFER_POLL_MS = 25;
/** After a 1013 close the frame sits behind unread data: the socket is cut after this grace. */
const SLOW_CLOSE_GRACE_MS = 1_000;
/** Read watermarks are a shortcut, not state: when one expires the scan starts over from seq 0. */
const READ_MARK_TTL_S = 30 * 86_400;
/** setTimeout's largest delay; later expiries are re-armed when it fires. */
const MAX_TIMER_MS = 2_147_483_647;

export interface SessionDeps {
  hub: Hub;
  ingest: Ingest;
  store: Store;
  events: EventHub;
  logger: Logger;
  verify(token: string): TokenCheck;
  rejected(reason: string): void;
  maxMsgsPerS: number;
  maxSocketsPerVisitor: number;
  /** Messages per `resume` page. */
  replayPage: number;
  /** Back-pressure high-water mark in bytes (WEBCHAT_SEND_BUFFER_BYTES). */
  sendBufferBytes: number;
  /** How long a socket may stay over the mark before it is closed with 1013. */
  slowSocketMs: number;
  authTimeoutMs: number;
  /** Uploaded files a `message` frame may reference; without it, frames with files are refused. */
  files?: WebChatFiles;
  /** The `ready` frame's public extras: the bot configuration's greeting, the upload limits. */
  hello?: () => ReadyExtras;
  now?: () => number;
}

export class Session implements LocalSocket {
  /** Cleared by the heartbeat before each ping and set again by the pong. */
  alive = true;
  readonly #ws: WebSocket;
  readonly #deps: SessionDeps;
  readonly #bucket: TokenBucket;
  readonly #now: () => number;
  #log: Logger;
  #state: 'auth' | 'open' | 'closed' = 'auth';
  #visitor: Visitor | undefined;
  #conversation: Conversation | undefined;
  #chain: Promise<void> = Promise.resolve();
  /** Live frames held back while a `resume` replays from the store; `null` when not replaying. */
  #held: ServerFrame[] | null = null;
  /** The replay in progress; a new `resume` aborts it (its remaining pages are not sent). */
  #replay: AbortController | null = null;
  #replayDone: Promise<void> = Promise.resolve();
  /** Set while the socket is over the send-buffer mark. */
  #slowTimer: NodeJS.Timeout | undefined;
  #authTimer: NodeJS.Timeout | undefined;
  #expiryTimer: NodeJS.Timeout | undefined;
  #rateLogged = false;

  constructor(ws: WebSocket, deps: SessionDeps) {
    this.#ws = ws;
    this.#deps = deps;
    this.#now = deps.now ?? Date.now;
    this.#log = deps.logger;
    this.#bucket = new TokenBucket(deps.maxMsgsPerS, deps.maxMsgsPerS * 2, this.#now);
  }

  get conversationId(): string {
    return this.#conversation?.id ?? '';
  }

  get visitorId(): string {
    return this.#visitor?.id ?? '';
  }

  /** Starts the protocol; `token` is the one offered as subprotocol `bearer.<jwt>`, if any. */
  start(token: string | undefined): void {
    this.#ws.on('message', (data, isBinary) => this.#onFrame(data, isBinary));
    this.#ws.on('pong', () => {
      this.alive = true;
    });
    this.#ws.on('error', (err: Error & { code?: string }) => {
      // ws has already closed the socket (1009 for an oversized frame, 1002 for a protocol error).
      const reason = err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH' ? 'frame_too_large' : 'protocol_error';
      this.#reject(reason, err.message);
    });
    this.#ws.on('close', () => this.#closed());
    if (token !== undefined) {
      this.#enqueue(() => this.#authenticate(token));
    } else {
      this.#authTimer = setTimeout(() => {
        this.#reject('auth_timeout', 'no auth frame in time');
        this.close(CLOSE.AUTH_REQUIRED, 'authentication required');
      }, this.#deps.authTimeoutMs);
    }
  }

  /** Heartbeat: terminates a socket that missed the last pong, pings it otherwise. */
  heartbeat(): void {
    if (!this.alive) {
      this.#log.info('web-chat socket missed its heartbeat; terminated');
      this.#ws.terminate();
      return;
    }
    this.alive = false;
    this.#ws.ping();
  }

  close(code: number, reason: string): void {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    this.#ws.close(code, reason);
  }

  push(frame: ServerFrame, raw: string): boolean {
    if (this.#state !== 'open' || this.#ws.readyState !== this.#ws.OPEN) return false;
    if (this.#held) this.#held.push(frame);
    else this.#write(raw);
    return true;
  }

  // --- frames in ----------------------------------------------------------------------------------

  #onFrame(data: RawData, isBinary: boolean): void {
    if (this.#state === 'closed') return;
    if (!this.#bucket.take()) {
      if (!this.#rateLogged) {
        this.#log.warn({ reason: 'rate_limited' }, 'web-chat frames over the rate limit dropped');
        this.#rateLogged = true;
      }
      this.#deps.rejected('rate_limited');
      this.#send({ type: 'error', code: 'rate_limited', message: 'Too many frames; slow down' });
      return;
    }
    if (isBinary) {
      this.#reject('invalid_frame', 'binary frame');
      this.#send({ type: 'error', code: 'invalid_frame', message: 'Frames are JSON text' });
      return;
    }
    const parsed = parseClientFrame(rawText(data));
    if (!parsed.ok) {
      this.#reject(parsed.code, parsed.message);
      this.#send({ type: 'error', code: parsed.code, message: parsed.message });
      return;
    }
    this.#enqueue(() => this.#handle(parsed.frame));
  }

  #enqueue(work: () => Promise<void>): void {
    this.#chain = this.#chain.then(work).catch((err: unknown) => {
      this.#log.error({ err }, 'web-chat frame failed');
      if (this.#state === 'auth') {
        // Authenticated but the conversation could not be loaded (store unreachable): let the widget retry.
        this.close(CLOSE.INTERNAL, 'try again later');
        return;
      }
      this.#send({ type: 'error', code: 'internal', message: 'Internal error' });
    });
  }

  async #handle(frame: ClientFrame): Promise<void> {
    if (this.#state === 'closed') return;
    if (this.#state === 'auth') {
      if (frame.type !== 'auth') {
        this.#reject('auth_required', `${frame.type} frame before auth`);
        this.close(CLOSE.AUTH_REQUIRED, 'authentication required');
        return;
      }
      await this.#authenticate(frame.token);
      return;
    }
    switch (frame.type) {
      case 'auth':
        this.#refresh(frame.token);
        return;
      case 'message':
        await this.#message(frame);
        return;
      case 'typing':
        // Nobody renders the visitor's typing yet (no agent console); accepted so widgets may send it.
        return;
      case 'read':
        await this.#read(frame.seq);
        return;
      case 'resume':
        await this.#resume(frame.afterSeq);
        return;
    }
  }

  // --- authentication -----------------------------------------------------------------------------

  async #authenticate(token: string): Promise<void> {
    clearTimeout(this.#authTimer);
    const visitor = this.#checkToken(token);
    if (!visitor) return;
    const { events, ingest } = this.#deps;
    const identity = visitorIdentity(visitor);
    const from = await ingest.contactOf(
      'webchat',
      {
        id: visitor.id,
        role: 'user',
        ...(visitor.name !== undefined ? { name: visitor.name } : {}),
        ...(visitor.email !== undefined ? { address: visitor.email } : {}),
      },
      identity,
    );
    const resolved = await ingest.resolveConversation({
      channel: 'webchat',
      channelRef: visitor.id,
      from,
      identity,
    });
    const { created } = resolved;
    const conversation = await ingest.attachContact(resolved.conversation, 'webchat', from, identity);
    if (created) await events.announceConversation(conversation);
    if (this.#state === 'closed') return;
    // Checked right before adding (no await in between), so concurrent handshakes cannot overshoot.
    if (this.#deps.hub.socketsOf(visitor.id) >= this.#deps.maxSocketsPerVisitor) {
      this.#reject('too_many_sockets', `more than ${this.#deps.maxSocketsPerVisitor} sockets`);
      this.close(CLOSE.TOO_MANY_SOCKETS, 'too many open sockets for this visitor');
      return;
    }
    this.#visitor = visitor;
    this.#conversation = conversation;
    this.#log = this.#deps.logger.child({ conversationId: conversation.id });
    this.#deps.hub.add(this);
    this.#state = 'open';
    this.#armExpiry();
    this.#ready();
  }

  /** In-band refresh: a fresh token for the same visitor extends the socket's life. */
  #refresh(token: string): void {
    const visitor = this.#checkToken(token);
    if (!visitor || !this.#visitor) return;
    if (visitor.id !== this.#visitor.id) {
      this.#reject('token_invalid', 'refresh token is for another visitor');
      this.close(CLOSE.TOKEN_INVALID, 'token is for another visitor');
      return;
    }
    this.#visitor = { ...this.#visitor, expiresAt: visitor.expiresAt };
    this.#armExpiry();
    this.#ready();
  }

  /** Verifies a token; on failure logs, counts and closes (4001 expired, 4003 otherwise). */
  #checkToken(token: string): Visitor | undefined {
    const check = this.#deps.verify(token);
    if (check.ok) return check.visitor;
    if (check.reason === 'expired') {
      this.#reject('token_expired', check.detail);
      this.close(CLOSE.TOKEN_EXPIRED, 'token expired');
    } else {
      this.#reject('token_invalid', check.detail);
      this.close(CLOSE.TOKEN_INVALID, 'invalid token');
    }
    return undefined;
  }

  #armExpiry(): void {
    clearTimeout(this.#expiryTimer);
    const left = (this.#visitor?.expiresAt ?? 0) - this.#now();
    if (left <= 0) {
      this.#log.info('web-chat token expired on an open socket');
      this.close(CLOSE.TOKEN_EXPIRED, 'token expired');
      return;
    }
    this.#expiryTimer = setTimeout(() => this.#armExpiry(), Math.min(left, MAX_TIMER_MS));
  }

  #ready(): void {
    this.#send({
      type: 'ready',
      conversationId: this.conversationId,
      visitorId: this.visitorId,
      expiresAt: new Date(this.#visitor?.expiresAt ?? 0).toISOString(),
      ...this.#deps.hello?.(),
    });
  }

  // --- message, read, resume ----------------------------------------------------------------------

  async #message(frame: MessageFrame): Promise<void> {
    const conversation = this.#conversation!;
    const { ingest } = this.#deps;
    // The bot's typing indicator is the engine's (through the adapter's `signal`, on and off around the
    // bot call, published in order with the reply); sending one here too showed it twice per message.
    let attachments: Attachment[] = [];
    if (frame.attachments && frame.attachments.length > 0) {
      const found = await this.#deps.files?.resolve(
        conversation.id,
        frame.attachments.map((a) => a.id),
      );
      if (!found) {
        this.#reject('invalid_frame', 'message references a file not uploaded into this conversation');
        this.#send({
          type: 'error',
          code: 'invalid_frame',
          message: 'The message references a file that was not uploaded here (or has expired)',
          clientMessageId: frame.clientMessageId,
        });
        return;
      }
      attachments = found;
    }
    let accepted: Awaited<ReturnType<Ingest['acceptInto']>>;
    try {
      accepted = await ingest.acceptInto(
        conversation,
        'webchat',
        `client:${frame.clientMessageId}`,
        toNewMessage(frame, this.#visitor!, attachments),
        { channelRef: this.#visitor!.id },
      );
    } catch (err) {
      if (isGatewayError(err) && err.status === 503) {
        this.#log.warn({ code: err.code }, 'web-chat message not accepted; the widget retries');
        const retryAfter = typeof err.extra.retryAfter === 'number' ? err.extra.retryAfter : 1;
        this.#send({
          type: 'error',
          code: 'unavailable',
          message: err.message,
          clientMessageId: frame.clientMessageId,
          retryAfter,
        });
        return;
      }
      this.#log.error({ err }, 'web-chat message failed');
      this.#send({
        type: 'error',
        code: 'internal',
        message: 'Internal error',
        clientMessageId: frame.clientMessageId,
      });
      return;
    }
    const { message, duplicate } = accepted;
    this.#send({
      type: 'ack',
      clientMessageId: frame.clientMessageId,
      id: message.id,
      seq: message.seq,
      ...(duplicate ? { duplicate: true as const } : {}),
    });
    if (duplicate) return;
    // Also to the sender's other tabs (and the sender, which merges it by id).
    await this.#publish({ type: 'message', message: toWireMessage(message) });
  }

  /** Moves the bot's messages up to `seq` to `read` and tells every tab. */
  async #read(seq: number): Promise<void> {
    const conversation = this.#conversation!;
    const { store, events } = this.#deps;
    const key = `webchat:read:${conversation.id}`;
    const mark = Number((await store.kv.get(key)) ?? 0) || 0;
    if (seq <= mark) return;
    let after = mark;
    let seen = mark;
    for (;;) {
      const page = await store.messagesAfter(conversation.id, after, PAGE);
      for (const m of page) {
        if (m.seq > seq) break;
        seen = m.seq;
        if (m.direction !== 'outbound' || !m.delivery) continue;
        const result = await store.updateDelivery(conversation.id, m.id, 'read');
        if (!result?.changed) continue;
        await events.emit({
          type: 'message.delivery',
          conversationId: conversation.id,
          seq: m.seq,
          message: result.message,
        });
        await this.#publish({ type: 'receipt', id: m.id, seq: m.seq, status: 'read' });
      }
      const last = page.at(-1);
      if (page.length < PAGE || !last || last.seq >= seq) break;
      after = last.seq;
    }
    // Only up to what exists: a read of a seq not yet assigned must not mark later messages as read.
    if (seen > mark) await store.kv.set(key, String(seen), READ_MARK_TTL_S);
  }

  /**
   * Starts replaying every visible message after `afterSeq`, in pages, each read only once the socket
   * has drained below the send-buffer mark; the frames published meanwhile are held and let through at
   * the end. A replay still running is cancelled first: one replay per socket, whatever the visitor
   * sends. The replay runs beside the frame chain so that the next `resume` can cancel it.
   */
  async #resume(afterSeq: number): Promise<void> {
    this.#replay?.abort();
    await this.#replayDone;
    if (this.#state !== 'open') return;
    const replay = new AbortController();
    this.#replay = replay;
    this.#replayDone = this.#replayPages(afterSeq, replay.signal)
      .catch((err: unknown) => {
        this.#log.error({ err }, 'web-chat replay failed');
        this.#send({ type: 'error', code: 'internal', message: 'Internal error' });
      })
      .finally(() => {
        if (this.#replay === replay) this.#replay = null;
      });
  }

  async #replayPages(afterSeq: number, signal: AbortSignal): Promise<void> {
    const conversation = this.#conversation!;
    const { store, hub, replayPage } = this.#deps;
    this.#held ??= [];
    let after = afterSeq;
    try {
      for (;;) {
        if (!(await this.#drained(signal))) return;
        const page = await store.messagesAfter(conversation.id, after, replayPage);
        if (signal.aborted) return;
        for (const m of page) {
          if (isVisible(m)) {
            this.#send({ type: 'message', message: toWireMessage(m, conversation) });
            if (
              m.direction === 'outbound' &&
              (m.delivery?.status === 'pending' || m.delivery?.status === 'sent')
            ) {
              await hub.markDelivered(conversation.id, m.id);
            }
          }
          after = m.seq;
        }
        if (page.length < replayPage) break;
      }
    } finally {
      // A replay superseded by a newer one leaves the held frames to it.
      if (!signal.aborted) {
        const held = this.#held ?? [];
        this.#held = null;
        for (const frame of held) {
          if (frame.type === 'message' && frame.message.seq <= after) continue;
          this.#send(frame);
        }
      }
    }
  }

  /** Waits until the socket holds no more than the mark unsent; false once aborted or closed. */
  async #drained(signal: AbortSignal): Promise<boolean> {
    for (;;) {
      if (signal.aborted || this.#state !== 'open' || this.#ws.readyState !== this.#ws.OPEN) return false;
      if (this.#ws.bufferedAmount <= this.#deps.sendBufferBytes) return true;
      await new Promise((resolve) => setTimeout(resolve, BUFFER_POLL_MS));
    }
  }

  // --- helpers ------------------------------------------------------------------------------------

  async #publish(frame: ServerFrame): Promise<void> {
    try {
      await this.#deps.hub.publish(this.conversationId, frame);
    } catch (err) {
      // Pub/sub down: this socket still gets the frame; other tabs catch up through `resume`.
      this.#log.warn({ err, frame: frame.type }, 'web-chat fan-out failed; delivering locally');
      this.#deps.hub.dispatch(this.conversationId, frame);
    }
  }

  #send(frame: ServerFrame): void {
    if (this.#ws.readyState === this.#ws.OPEN) this.#write(JSON.stringify(frame));
  }

  /** Every write goes through here, so a socket that stops reading is noticed whatever it is sent. */
  #write(raw: string): void {
    this.#ws.send(raw);
    this.#watchBuffer();
  }

  /**
   * Back-pressure: a socket whose unsent bytes stay over the mark for `slowSocketMs`, or go over four
   * times the mark at all, is not reading; it is closed with 1013 and cut shortly after.
   */
  #watchBuffer(): void {
    const { sendBufferBytes, slowSocketMs } = this.#deps;
    const amount = this.#ws.bufferedAmount;
    if (amount > sendBufferBytes * HARD_BUFFER_FACTOR) {
      this.#tooSlow(amount);
      return;
    }
    if (this.#slowTimer || amount <= sendBufferBytes) return;
    const since = this.#now();
    const check = () => {
      this.#slowTimer = undefined;
      if (this.#state === 'closed' || this.#ws.bufferedAmount <= sendBufferBytes) return;
      if (this.#now() - since >= slowSocketMs) this.#tooSlow(this.#ws.bufferedAmount);
      else this.#slowTimer = setTimeout(check, BUFFER_POLL_MS);
    };
    this.#slowTimer = setTimeout(check, BUFFER_POLL_MS);
  }

  #tooSlow(buffered: number): void {
    if (this.#state === 'closed') return;
    this.#reject('slow_consumer', `${buffered} bytes unsent`);
    this.#replay?.abort();
    this.close(CLOSE.TRY_AGAIN_LATER, 'not reading; reconnect and resume');
    const ws = this.#ws;
    setTimeout(() => ws.terminate(), SLOW_CLOSE_GRACE_MS).unref();
  }

  #reject(reason: string, detail: string): void {
    this.#log.warn({ reason, detail }, 'web-chat input refused');
    this.#deps.rejected(reason);
  }

  #closed(): void {
    this.#state = 'closed';
    this.#replay?.abort();
    clearTimeout(this.#slowTimer);
    clearTimeout(this.#authTimer);
    clearTimeout(this.#expiryTimer);
    this.#deps.hub.remove(this);
  }
}

function rawText(data: RawData): string {
  if (Buffer.isBuffer(data)) return data.toString('utf8');
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.from(data).toString('utf8');
}
