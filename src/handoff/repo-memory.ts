/**
 * @module The embedded {@link HandoffRepo}: each transition is one synchronous step of the embedded
 * store over the conversation and its last seq, and the idle timers are a map in this process (the
 * embedded backend is one process whose data ends with it).
 */
import type { Conversation } from '../core/model.js';
import type { MemoryStore } from '../store/memory.js';
import { type Decision, decide, type HandoffCommand } from './machine.js';
import type { ApplyResult, HandoffRepo } from './repo.js';

export class MemoryHandoffRepo implements HandoffRepo {
  readonly #store: MemoryStore;
  readonly #due = new Map<string, number>();
  readonly #now: () => number;

  constructor(store: MemoryStore, now: () => number = Date.now) {
    this.#store = store;
    this.#now = now;
  }

  async apply(conversationId: string, command: HandoffCommand): Promise<ApplyResult> {
    let decision: Decision | undefined;
    let before: Conversation | undefined;
    const after = this.#store.transformConversation(conversationId, (current, lastSeq) => {
      before = current;
      decision = decide(current, command);
      if (decision.kind === 'refused' || !decision.next) return null;
      if (!decision.ends) return decision.next;
      return { ...decision.next, handoffResume: { afterSeq: lastSeq, at: decision.next.updatedAt } };
    });
    if (!after || !decision || !before) return { kind: 'missing' };
    if (decision.kind === 'refused') return { kind: 'refused', code: decision.code, conversation: after };
    if (decision.due === null) this.#due.delete(conversationId);
    else if (decision.due !== undefined) this.#due.set(conversationId, decision.due);
    return decision.next
      ? { kind: 'applied', conversation: after, events: decision.events, changed: true }
      : { kind: 'applied', conversation: after, events: [], changed: false };
  }

  async claimDue(max: number, retryMs: number): Promise<string[]> {
    const now = this.#now();
    const out: string[] = [];
    for (const [id, at] of this.#due) {
      if (out.length >= max) break;
      if (at > now) continue;
      this.#due.set(id, now + retryMs);
      out.push(id);
    }
    return out;
  }

  async forget(conversationId: string): Promise<void> {
    this.#due.delete(conversationId);
  }

  async close(): Promise<void> {
    this.#due.clear();
  }
}
