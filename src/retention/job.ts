/**
 * @module Retention (SPEC §12): with `RETENTION_DAYS` set, conversations whose last message (or, with
 * none, whose creation) is older than that are erased the way a contact's erasure erases them
 * (SPEC §9): the conversation with its messages and queue, its dedupe keys, its channel-ref index and
 * the adapters' entries about it (thread indexes, attachments, delivery ids), and its link to the
 * contact. A contact left with no conversation is erased too, identities and all, so a customer who
 * has been silent for the whole period leaves nothing behind.
 *
 * The job runs every {@link RUN_EVERY_MS} in one process at a time (a lock in Redis). It walks the
 * conversation index once per run, which is the price of having no index by last activity; runs are
 * hourly and the walk reads a page of conversations per round trip.
 */
import type { Logger } from 'pino';
import type { ContactService } from '../contacts/service.js';
import type { Sweeper } from '../contacts/sweep.js';
import type { EventHub } from '../core/events.js';
import type { Conversation } from '../core/model.js';
import type { Store } from '../core/store.js';
import type { Metrics } from '../metrics.js';
import type { JobLock } from './lock.js';

/** How often the job runs. */
export const RUN_EVERY_MS = 60 * 60 * 1000;
/** The first run after the start, so a fleet restarting together does not contend at once. */
export const FIRST_RUN_MS = 60 * 1000;
/** The lease on the lock, renewed after every page. */
const LEASE_MS = 60 * 1000;
const PAGE = 200;
/** Needles shorter than this would match unrelated entries (the same floor as contact erasure). */
const MIN_NEEDLE = 5;
const DAY_MS = 86_400_000;

export interface RetentionRun {
  /** False when another process held the lock. */
  ran: boolean;
  conversations: number;
  contacts: number;
}

export interface RetentionDeps {
  store: Store;
  contacts: ContactService;
  sweeper: Sweeper | null;
  events: EventHub;
  metrics: Metrics;
  logger: Logger;
  lock: JobLock;
  days: number;
}

/** The time a conversation was last active: its last message, else its creation. */
function lastActive(c: Conversation): number {
  return Date.parse(c.lastMessageAt ?? c.createdAt);
}

export class RetentionJob {
  readonly #deps: RetentionDeps;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<unknown> | undefined;

  constructor(deps: RetentionDeps) {
    this.#deps = deps;
  }

  /** Schedules the runs; each one that fails is logged and the next one tries again. */
  start(): void {
    const schedule = (ms: number) => {
      this.#timer = setTimeout(() => {
        this.#running = this.run()
          .catch((err) => {
            this.#deps.metrics.retentionRuns.inc({ outcome: 'failed' });
            this.#deps.logger.error({ err }, 'retention: run failed; trying again at the next run');
          })
          .finally(() => schedule(RUN_EVERY_MS));
      }, ms);
      this.#timer.unref();
    };
    schedule(FIRST_RUN_MS);
  }

  async stop(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#running;
  }

  /** One run: erases what is older than the retention period at `now`. */
  async run(now = Date.now()): Promise<RetentionRun> {
    const { lock, metrics, logger } = this.#deps;
    if (!(await lock.acquire(LEASE_MS))) {
      metrics.retentionRuns.inc({ outcome: 'skipped' });
      return { ran: false, conversations: 0, contacts: 0 };
    }
    const result: RetentionRun = { ran: true, conversations: 0, contacts: 0 };
    try {
      const cutoff = now - this.#deps.days * DAY_MS;
      let cursor: string | undefined;
      do {
        const page = await this.#deps.store.listConversations({
          take: PAGE,
          order: 'asc',
          ...(cursor ? { cursor } : {}),
        });
        for (const c of page.items) {
          if (lastActive(c) >= cutoff) continue;
          const erased = await this.#erase(c);
          result.conversations += 1;
          result.contacts += erased;
        }
        cursor = page.cursor ?? undefined;
        // Another process may take over a run whose lease ran out; this one then stops.
        if (cursor && !(await lock.renew(LEASE_MS))) {
          logger.warn('retention: lost the lock mid-run; stopping');
          break;
        }
      } while (cursor);
    } finally {
      await lock.release().catch(() => undefined);
    }
    metrics.retentionRuns.inc({ outcome: 'ran' });
    if (result.conversations > 0)
      logger.info({ ...result, days: this.#deps.days }, 'retention: erased conversations past the period');
    return result;
  }

  /** Erases one conversation; answers how many contacts went with it. */
  async #erase(c: Conversation): Promise<number> {
    const { store, contacts, sweeper, events, metrics } = this.#deps;
    const owners = new Set<string>();
    const detached = await contacts.repo.detach(c.id);
    if (detached) owners.add(detached);
    for (const p of c.participants) if (p.role === 'user' && p.contactId) owners.add(p.contactId);
    const last = await store.listMessages(c.id, { take: 1, order: 'desc' });
    if (await store.deleteConversation(c.id)) {
      const needles = [c.id, c.channelRef].filter((n) => n.length >= MIN_NEEDLE);
      await sweeper?.sweep([c.id], needles, new Set());
      metrics.retentionErased.inc({ kind: 'conversation' });
      // Without the erased content, as contact.deleted: a subscriber learns what went, not what it held.
      await events.emit({
        type: 'conversation.deleted',
        conversationId: c.id,
        seq: last.items[0]?.seq ?? 0,
        reason: 'retention',
      });
    }
    let erased = 0;
    for (const contactId of owners) {
      const left = await contacts.repo.conversationIds(contactId);
      const alive = await Promise.all(left.map((id) => store.getConversation(id)));
      if (alive.some((x) => x !== null)) continue;
      if (await contacts.erase(contactId)) {
        erased += 1;
        metrics.retentionErased.inc({ kind: 'contact' });
      }
    }
    return erased;
  }
}
