/**
 * @module The console's live feed (SPEC §11): every domain event of the event hub, the same events
 * that feed outbound webhooks, is published on the store's bus (Redis pub/sub across processes, an
 * in-process emitter on the embedded backend) as a small notice, and every process fans the notices
 * it hears out to its connected consoles. A notice names what changed, not its content: the page
 * reads the change through the console API, so a notice never carries more than an id.
 *
 * Publishing is fire-and-forget: a console that misses a notice catches up on its next read, and an
 * unreachable bus must never slow or fail the change that emitted the event. The notices of one turn
 * of the event loop go out as one message (a JSON array; a lone notice as the object itself), so a
 * busy engine sends one PUBLISH per turn rather than two per answered message; a listener hears them
 * one by one, in the order they were emitted.
 */
import type { Logger } from 'pino';
import type { DomainEvent, EventHub } from '../core/events.js';
import type { Bus } from '../core/store.js';

/** The bus topic of console notices. */
export const FEED_TOPIC = 'console:events';

/** What a console hears of one domain event. */
export interface Notice {
  type: DomainEvent['type'];
  conversationId: string;
  seq: number;
  at: string;
  messageId?: string;
  changes?: string[];
}

export function noticeOf(event: DomainEvent): Notice {
  // Built up rather than spread: one notice per event on the accept path (see core/extend.ts).
  const notice: Notice = {
    type: event.type,
    conversationId: event.conversationId,
    seq: event.seq,
    at: event.at,
  };
  if (event.message) notice.messageId = event.message.id;
  if (event.changes) notice.changes = event.changes;
  return notice;
}

export type NoticeListener = (notice: Notice) => void;

/** Notices in one bus message at most; a longer turn's go out in several. */
const BATCH = 500;

export class ConsoleFeed {
  readonly #bus: Bus;
  readonly #logger: Logger;
  readonly #listeners = new Set<NoticeListener>();
  #unsubscribe: Promise<() => Promise<void>> | undefined;
  #offHub: (() => void) | undefined;
  #warnedAt = Number.NEGATIVE_INFINITY;
  #queued: Notice[] = [];
  #flushing: NodeJS.Immediate | undefined;

  constructor(deps: { bus: Bus; events: EventHub; logger: Logger }) {
    this.#bus = deps.bus;
    this.#logger = deps.logger;
    this.#offHub = deps.events.on((event) => {
      this.#queued.push(noticeOf(event));
      this.#flushing ??= setImmediate(() => this.#flush());
    });
  }

  #flush(): void {
    this.#flushing = undefined;
    const queued = this.#queued;
    this.#queued = [];
    for (let i = 0; i < queued.length; i += BATCH) {
      const batch = queued.slice(i, i + BATCH);
      const payload = JSON.stringify(batch.length === 1 ? batch[0] : batch);
      this.#bus.publish(FEED_TOPIC, payload).catch((err: unknown) => {
        // Once per 10 s at most: while the bus is away every event would say it.
        if (Date.now() - this.#warnedAt < 10_000) return;
        this.#warnedAt = Date.now();
        this.#logger.warn({ err }, 'console feed: the bus is unreachable; live updates are delayed');
      });
    }
  }

  /**
   * Calls `listener` with every notice from any process until the returned function is called. The
   * bus is subscribed while at least one listener is there.
   */
  async listen(listener: NoticeListener): Promise<() => void> {
    this.#listeners.add(listener);
    this.#unsubscribe ??= this.#bus.subscribe(FEED_TOPIC, (payload) => this.#deliver(payload));
    try {
      await this.#unsubscribe;
    } catch (err) {
      this.#listeners.delete(listener);
      this.#unsubscribe = undefined;
      throw err;
    }
    return () => {
      this.#listeners.delete(listener);
      if (this.#listeners.size === 0) this.#drop();
    };
  }

  /** Stops publishing and listening (gateway shutdown). */
  close(): void {
    this.#offHub?.();
    this.#offHub = undefined;
    if (this.#flushing) clearImmediate(this.#flushing);
    this.#flush();
    this.#listeners.clear();
    this.#drop();
  }

  #drop(): void {
    const unsubscribe = this.#unsubscribe;
    this.#unsubscribe = undefined;
    unsubscribe
      ?.then((off) => off())
      .catch((err: unknown) => this.#logger.warn({ err }, 'console feed: unsubscribe failed'));
  }

  #deliver(payload: string): void {
    let parsed: Notice | Notice[];
    try {
      parsed = JSON.parse(payload) as Notice | Notice[];
    } catch {
      return;
    }
    for (const notice of Array.isArray(parsed) ? parsed : [parsed]) {
      for (const listener of this.#listeners) listener(notice);
    }
  }
}
