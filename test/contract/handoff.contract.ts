/**
 * The handoff repository conformance suite (SPEC §8): every backend applies each transition in one
 * atomic step, idempotently, with its events given to exactly one of any number of racing callers,
 * ends a handoff at the conversation's last seq, and keeps idle release timers that fire once.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Store } from '../../src/core/store.js';
import { type HandoffCommand, isBotMuted } from '../../src/handoff/machine.js';
import type { ApplyResult, HandoffRepo } from '../../src/handoff/repo.js';
import { acceptInput } from '../helpers/store.js';

export interface HandoffFixture {
  store: Store;
  /** Two repos as two processes would have them (the embedded backend has one process: the same). */
  repos: [HandoffRepo, HandoffRepo];
  cleanup(): Promise<void>;
}

const now = () => new Date().toISOString();
const request = (extra: Partial<Extract<HandoffCommand, { type: 'request' }>> = {}): HandoffCommand => ({
  type: 'request',
  reason: 'help',
  requestedBy: 'customer',
  at: now(),
  idleReleaseS: 0,
  ...extra,
});
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function applied(result: ApplyResult) {
  if (result.kind !== 'applied') throw new Error(`expected applied, got ${result.kind}`);
  return result;
}

export function handoffContract(name: string, make: () => Promise<HandoffFixture>): void {
  describe(`HandoffRepo (${name})`, () => {
    let f: HandoffFixture;
    let store: Store;
    let repo: HandoffRepo;

    beforeEach(async () => {
      f = await make();
      store = f.store;
      repo = f.repos[0];
    });
    afterEach(async () => {
      await f.cleanup();
    });

    it('requests once: pending with who and why; a repeat changes nothing and has no events', async () => {
      const c = await store.createConversation({ channel: 'api' });
      expect(c.handoff).toBeNull();
      const first = applied(await repo.apply(c.id, request()));
      expect(first.changed).toBe(true);
      expect(first.events).toEqual(['conversation.handoff_requested']);
      expect(first.conversation).toMatchObject({
        status: 'handoff',
        handoff: { state: 'pending', reason: 'help', requestedBy: 'customer' },
      });
      const again = applied(await repo.apply(c.id, request({ reason: 'other' })));
      expect(again).toMatchObject({ changed: false, events: [] });
      expect(again.conversation.handoff?.reason).toBe('help');
      expect(await store.getConversation(c.id)).toEqual(first.conversation);
    });

    it('gives the transition and its event to exactly one of many racing callers', async () => {
      const c = await store.createConversation({ channel: 'api' });
      const results = await Promise.all(
        Array.from({ length: 20 }, (_, i) => f.repos[i % 2]!.apply(c.id, request({ reason: `r${i}` }))),
      );
      const winners = results.map(applied).filter((r) => r.changed);
      expect(winners).toHaveLength(1);
      expect(results.map(applied).flatMap((r) => r.events)).toEqual(['conversation.handoff_requested']);
      expect((await store.getConversation(c.id))?.handoff?.reason).toBe(
        winners[0]!.conversation.handoff?.reason,
      );
    });

    it('assigns, enters and assigns in one step from open, and repeats nothing', async () => {
      const c = await store.createConversation({ channel: 'api' });
      const direct = applied(
        await repo.apply(c.id, { type: 'assign', assignee: 'part_a', at: now(), idleReleaseS: 0 }),
      );
      expect(direct.events).toEqual(['conversation.handoff_requested', 'conversation.handoff_assigned']);
      expect(direct.conversation.handoff).toMatchObject({
        state: 'assigned',
        assignee: 'part_a',
        requestedBy: 'agent',
      });
      const same = applied(
        await repo.apply(c.id, { type: 'assign', assignee: 'part_a', at: now(), idleReleaseS: 0 }),
      );
      expect(same).toMatchObject({ changed: false, events: [] });
      const other = applied(
        await repo.apply(c.id, { type: 'assign', assignee: 'part_b', at: now(), idleReleaseS: 0 }),
      );
      expect(other.events).toEqual(['conversation.handoff_assigned']);
      expect(other.conversation.handoff).toMatchObject({ state: 'assigned', assignee: 'part_b' });
    });

    it('refuses to release what is not in handoff; releases at the last seq, once', async () => {
      const c = await store.createConversation({ channel: 'api' });
      expect(await repo.apply(c.id, { type: 'release', at: now() })).toMatchObject({
        kind: 'refused',
        code: 'not_in_handoff',
      });
      await store.accept(acceptInput(c.id, 'before'));
      applied(await repo.apply(c.id, request()));
      await store.accept(acceptInput(c.id, 'during'));
      const [a, b] = await Promise.all([
        f.repos[0].apply(c.id, { type: 'release', at: now() }),
        f.repos[1].apply(c.id, { type: 'release', at: now() }),
      ]);
      const released = [a, b].filter((r) => r.kind === 'applied');
      expect(released).toHaveLength(1);
      expect([a, b].filter((r) => r.kind === 'refused')).toHaveLength(1);
      const done = applied(released[0]!);
      expect(done.events).toEqual(['conversation.handoff_released']);
      expect(done.conversation).toMatchObject({
        status: 'open',
        handoff: null,
        handoffResume: { afterSeq: 2 },
      });
      expect(await store.getConversation(c.id)).toEqual(done.conversation);
    });

    it('mutes a message that waited through the handoff, not one accepted after it ended', async () => {
      const c = await store.createConversation({ channel: 'api' });
      applied(await repo.apply(c.id, request()));
      const during = await store.accept(acceptInput(c.id, 'during'));
      applied(await repo.apply(c.id, { type: 'release', at: now() }));
      const after = await store.accept(acceptInput(c.id, 'after'));
      // Claimed only now, with the conversation open again: still never the bot's.
      const [claim] = await store.claim('w1', 1, 30_000);
      expect(claim?.message.id).toBe(during.message.id);
      expect(claim!.conversation.status).toBe('open');
      expect(isBotMuted(claim!.conversation, claim!.message.seq)).toBe(true);
      const done = await store.complete(
        claim!,
        { state: 'skipped', attempts: 1 },
        { owner: 'w1', leaseMs: 30_000 },
      );
      expect(done.next?.message.id).toBe(after.message.id);
      expect(isBotMuted(done.next!.conversation, done.next!.message.seq)).toBe(false);
    });

    it('lets the claim decide a message racing the handoff: claimed before is the bot’s, after is not', async () => {
      const c = await store.createConversation({ channel: 'api' });
      await store.accept(acceptInput(c.id, 'first'));
      const [first] = await store.claim('w1', 1, 30_000);
      applied(await repo.apply(c.id, request()));
      expect(isBotMuted(first!.conversation, first!.message.seq)).toBe(false);
      await store.accept(acceptInput(c.id, 'second'));
      const done = await store.complete(
        first!,
        { state: 'done', attempts: 1 },
        { owner: 'w1', leaseMs: 30_000 },
      );
      expect(isBotMuted(done.next!.conversation, done.next!.message.seq)).toBe(true);
    });

    it('closing ends the handoff with a release; closing an open one only closes it', async () => {
      const a = await store.createConversation({ channel: 'api' });
      applied(await repo.apply(a.id, request()));
      const closed = applied(await repo.apply(a.id, { type: 'close', at: now() }));
      expect(closed.events).toEqual(['conversation.handoff_released']);
      expect(closed.conversation).toMatchObject({
        status: 'closed',
        handoff: null,
        handoffResume: { afterSeq: 0 },
      });
      const b = await store.createConversation({ channel: 'api' });
      const plain = applied(await repo.apply(b.id, { type: 'close', at: now() }));
      expect(plain).toMatchObject({ changed: true, events: [] });
      expect(plain.conversation).toMatchObject({ status: 'closed', handoff: null });
      expect(plain.conversation.handoffResume).toBeUndefined();
    });

    it('clears the resume marker once, for the release it belongs to', async () => {
      const c = await store.createConversation({ channel: 'api' });
      await store.accept(acceptInput(c.id, 'm'));
      applied(await repo.apply(c.id, request()));
      applied(await repo.apply(c.id, { type: 'release', at: now() }));
      expect(applied(await repo.apply(c.id, { type: 'resumed', afterSeq: 0 })).changed).toBe(false);
      const served = applied(await repo.apply(c.id, { type: 'resumed', afterSeq: 1 }));
      expect(served.changed).toBe(true);
      expect((await store.getConversation(c.id))?.handoffResume).toBeUndefined();
    });

    it('keeps an idle release timer that comes due once, and is cleared by the release', async () => {
      const c = await store.createConversation({ channel: 'api' });
      const entered = applied(await repo.apply(c.id, request({ idleReleaseS: 1 })));
      expect(Date.parse(entered.conversation.handoff!.releaseAt!)).toBeGreaterThan(Date.now());
      expect(await repo.claimDue(10, 30_000)).toEqual([]);
      await sleep(1_100);
      const [x, y] = await Promise.all([f.repos[0].claimDue(10, 30_000), f.repos[1].claimDue(10, 30_000)]);
      expect([...x, ...y]).toEqual([c.id]);
      const released = applied(await repo.apply(c.id, { type: 'idle', at: now() }));
      expect(released.events).toEqual(['conversation.handoff_released']);
      expect(applied(await f.repos[1].apply(c.id, { type: 'idle', at: now() })).changed).toBe(false);
      expect(released.conversation.status).toBe('open');
    });

    it('moves the timer when an agent takes the conversation, and forgets it for a released one', async () => {
      const c = await store.createConversation({ channel: 'api' });
      applied(await repo.apply(c.id, request({ idleReleaseS: 1 })));
      await sleep(600);
      applied(await repo.apply(c.id, { type: 'assign', assignee: 'part_a', at: now(), idleReleaseS: 1 }));
      await sleep(600);
      expect(await repo.claimDue(10, 30_000)).toEqual([]);
      applied(await repo.apply(c.id, { type: 'release', at: now() }));
      await sleep(600);
      expect(await repo.claimDue(10, 30_000)).toEqual([]);
    });

    it('forgets the timer of a conversation that was deleted', async () => {
      const c = await store.createConversation({ channel: 'api' });
      applied(await repo.apply(c.id, request({ idleReleaseS: 1 })));
      await store.deleteConversation(c.id);
      await sleep(1_100);
      expect(await repo.claimDue(10, 0)).toEqual([c.id]);
      expect(await repo.apply(c.id, { type: 'idle', at: now() })).toEqual({ kind: 'missing' });
      await repo.forget(c.id);
      expect(await repo.claimDue(10, 0)).toEqual([]);
    });

    it('reports a conversation that does not exist', async () => {
      expect(await repo.apply('conv_01JD8Q0000000000000000NONE', request())).toEqual({ kind: 'missing' });
    });
  });
}
