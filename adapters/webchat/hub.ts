/**
 * @module The sockets this process holds, by conversation and visitor, and the fan-out between processes.
 *
 * Every frame meant for a conversation's sockets (a bot reply, the visitor's own message for their other
 * tabs, typing, receipts) is published on one bus topic; every gateway process subscribes once and pushes
 * the frame to the sockets it holds for that conversation. One shared topic instead of one per
 * conversation keeps subscriptions static (no subscribe/unsubscribe race when a visitor's last tab closes
 * while another opens); pub/sub fan-out of small frames is cheap next to the store writes behind them.
 */
import type { Logger } from 'pino';
import type { Bus, EventHub, Store } from '../../src/core/index.js';
import type { FramePublisher, ServerFrame } from './outbound.js';

const TOPIC = 'webchat';

/** One open, authenticated socket as the hub sees it. */
export interface LocalSocket {
  readonly conversationId: string;
  readonly visitorId: string;
  /** Writes (or, during a replay, queues) a frame; false when the socket can no longer take it. */
  push(frame: ServerFrame, raw: string): boolean;
}

interface Envelope {
  c: string;
  f: ServerFrame;
}

export class Hub implements FramePublisher {
  readonly #bus: Bus;
  readonly #store: Store;
  readonly #events: EventHub;
  readonly #log: Logger;
  readonly #typingTimeoutMs: number;
  readonly #byConversation = new Map<string, Set<LocalSocket>>();
  readonly #byVisitor = new Map<string, number>();
  readonly #typingTimers = new Map<string, NodeJS.Timeout>();
  #unsubscribe: (() => Promise<void>) | null = null;

  constructor(deps: { store: Store; events: EventHub; logger: Logger; typingTimeoutMs: number }) {
    this.#bus = deps.store.bus;
    this.#store = deps.store;
    this.#events = deps.events;
    this.#log = deps.logger;
    this.#typingTimeoutMs = deps.typingTimeoutMs;
  }

  async start(): Promise<void> {
    this.#unsubscribe = await this.#bus.subscribe(TOPIC, (payload) => this.#onBus(payload));
  }

  async stop(): Promise<void> {
    for (const timer of this.#typingTimers.values()) clearTimeout(timer);
    this.#typingTimers.clear();
    await this.#unsubscribe?.();
    this.#unsubscribe = null;
  }

  /** Publishes a frame to every socket of the conversation, in every process. */
  async publish(conversationId: string, frame: ServerFrame): Promise<void> {
    await this.#bus.publish(TOPIC, JSON.stringify({ c: conversationId, f: frame } satisfies Envelope));
  }

  /** Open sockets of a visitor in this process. */
  socketsOf(visitorId: string): number {
    return this.#byVisitor.get(visitorId) ?? 0;
  }

  add(socket: LocalSocket): void {
    let set = this.#byConversation.get(socket.conversationId);
    if (!set) {
      set = new Set();
      this.#byConversation.set(socket.conversationId, set);
    }
    set.add(socket);
    this.#byVisitor.set(socket.visitorId, this.socketsOf(socket.visitorId) + 1);
  }

  remove(socket: LocalSocket): void {
    const set = this.#byConversation.get(socket.conversationId);
    if (!set?.delete(socket)) return;
    if (set.size === 0) {
      this.#byConversation.delete(socket.conversationId);
      this.#clearTyping(socket.conversationId);
    }
    const left = this.socketsOf(socket.visitorId) - 1;
    if (left > 0) this.#byVisitor.set(socket.visitorId, left);
    else this.#byVisitor.delete(socket.visitorId);
  }

  /**
   * Moves an outbound message to `delivered` once it was handed to an open socket (SPEC §3: forward only,
   * so a late `sent` from the sending process cannot move it back).
   */
  async markDelivered(conversationId: string, messageId: string): Promise<void> {
    try {
      const result = await this.#store.updateDelivery(conversationId, messageId, 'delivered');
      if (result?.changed) {
        await this.#events.emit({
          type: 'message.delivery',
          conversationId,
          seq: result.message.seq,
          message: result.message,
        });
      }
    } catch (err) {
      this.#log.warn({ err, conversationId, messageId }, 'could not record web-chat delivery');
    }
  }

  #onBus(payload: string): void {
    let envelope: Envelope;
    try {
      envelope = JSON.parse(payload) as Envelope;
    } catch {
      this.#log.error('unreadable web-chat bus payload dropped');
      return;
    }
    this.dispatch(envelope.c, envelope.f);
  }

  /** Pushes a frame to this process's sockets of the conversation. */
  dispatch(conversationId: string, frame: ServerFrame): void {
    const sockets = this.#byConversation.get(conversationId);
    if (!sockets) return;
    if (frame.type === 'typing') {
      if (frame.on) this.#armTypingTimeout(conversationId);
      else this.#clearTyping(conversationId);
    }
    const raw = JSON.stringify(frame);
    let handed = false;
    for (const socket of sockets) handed = socket.push(frame, raw) || handed;
    if (
      handed &&
      frame.type === 'message' &&
      frame.message.direction === 'outbound' &&
      (frame.message.status === 'pending' || frame.message.status === 'sent')
    ) {
      void this.markDelivered(conversationId, frame.message.id);
    }
  }

  /** The indicator always clears: if neither a reply nor an error turns it off, this timer does. */
  #armTypingTimeout(conversationId: string): void {
    this.#clearTyping(conversationId);
    const timer = setTimeout(() => {
      this.#typingTimers.delete(conversationId);
      this.dispatch(conversationId, { type: 'typing', on: false });
    }, this.#typingTimeoutMs);
    timer.unref();
    this.#typingTimers.set(conversationId, timer);
  }

  #clearTyping(conversationId: string): void {
    const timer = this.#typingTimers.get(conversationId);
    if (timer) clearTimeout(timer);
    this.#typingTimers.delete(conversationId);
  }
}
