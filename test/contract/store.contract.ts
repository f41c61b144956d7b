/**
 * @module The Store conformance suite. Every backend runs it through a factory; both must pass it
 * unchanged, which is what lets the gateway treat them as one port (src/core/store.ts).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GatewayError, QueueFullError } from '../../src/core/errors.js';
import { isId } from '../../src/core/ids.js';
import type { Conversation, Message } from '../../src/core/model.js';
import type { AcceptInput, Claim, CompleteResult, NewMessage, Page, Store } from '../../src/core/store.js';

export interface StoreHandle {
  store: Store;
  cleanup(): Promise<void>;
}

export interface ContractOptions {
  /**
   * The pending limit under test. Factories must make it exact for a single conversation (for Redis:
   * one partition, since the limit is enforced per partition).
   */
  maxPending?: number;
}

export type StoreFactory = (options?: ContractOptions) => Promise<StoreHandle>;

/** The pending limit of stores made without options: high enough never to interfere. */
export const DEFAULT_MAX_PENDING = 10_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function user(text: string, extra: Partial<NewMessage> = {}): NewMessage {
  return { type: 'user', text, direction: 'inbound', ...extra };
}

function bot(text: string, extra: Partial<NewMessage> = {}): NewMessage {
  return { type: 'bot', text, direction: 'outbound', ...extra };
}

let keySeq = 0;

function input(conversationId: string, text: string, extra: Partial<AcceptInput> = {}): AcceptInput {
  return {
    conversationId,
    dedupeKey: `test:${++keySeq}`,
    dedupeTtlS: 60,
    sessionIdleS: 3_600,
    message: user(text),
    ...extra,
  };
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

async function expectCode(promise: Promise<unknown>, code: string): Promise<void> {
  const err = await rejection(promise);
  expect(err).toBeInstanceOf(GatewayError);
  expect((err as GatewayError).code).toBe(code);
}

/** Follows cursors to the end, calling `between` after each page (to add items while paging). */
async function allPages<T>(
  fetch: (cursor?: string) => Promise<Page<T>>,
  between: (page: number) => Promise<void> = async () => {},
): Promise<T[][]> {
  const pages: T[][] = [];
  let cursor: string | undefined;
  for (;;) {
    const page = await fetch(cursor);
    pages.push(page.items);
    await between(pages.length);
    if (page.cursor === null) return pages;
    expect(typeof page.cursor).toBe('string');
    cursor = page.cursor;
    if (pages.length > 100) throw new Error('pagination does not end');
  }
}

const seqs = (messages: Message[]) => messages.map((m) => m.seq);

/** What `complete` answers for a plain completion, and once the lease was lost. */
const DONE: CompleteResult = { completed: true, notify: false, next: null };
const LOST: CompleteResult = { completed: false, notify: false, next: null };

export function storeContract(name: string, factory: StoreFactory): void {
  describe(`Store contract: ${name}`, () => {
    let handle: StoreHandle;
    let store: Store;
    const extra: StoreHandle[] = [];

    beforeEach(async () => {
      handle = await factory();
      store = handle.store;
    });

    afterEach(async () => {
      await handle.cleanup();
      for (const h of extra.splice(0)) await h.cleanup();
    });

    async function open(): Promise<Conversation> {
      return store.createConversation({ channel: 'api' });
    }

    async function claimOne(owner = 'w1', leaseMs = 30_000): Promise<Claim> {
      const claims = await store.claim(owner, 1, leaseMs);
      expect(claims).toHaveLength(1);
      return claims[0]!;
    }

    describe('conversations', () => {
      it('creates a conversation with its first session', async () => {
        const c = await store.createConversation({
          channel: 'sms',
          participants: [{ id: 'u1', role: 'user', address: '+15550001' }],
          meta: { plan: 'pro' },
        });
        expect(isId(c.id, 'conv')).toBe(true);
        expect(isId(c.sessionId, 'sess')).toBe(true);
        expect(c).toMatchObject({
          channel: 'sms',
          channelRef: c.id,
          status: 'open',
          participants: [{ id: 'u1', role: 'user', address: '+15550001' }],
          meta: { plan: 'pro' },
          lastMessageAt: null,
        });
        expect(c.sessionState).toEqual({});
        expect(new Date(c.createdAt).toISOString()).toBe(c.createdAt);
        expect(c.updatedAt).toBe(c.createdAt);
        expect(c.sessionStartedAt).toBe(c.createdAt);
        expect(await store.getConversation(c.id)).toEqual(c);
        expect(await store.getConversation('conv_01ARZ3NDEKTSV4RRFFQ69G5FAV')).toBeNull();
      });

      it('resolves by channel and channelRef, creating once even under concurrency', async () => {
        const results = await Promise.all(
          Array.from({ length: 20 }, () =>
            store.resolveConversation({
              channel: 'whatsapp',
              channelRef: '+1555:+1666',
              meta: { src: 'wa' },
            }),
          ),
        );
        const ids = new Set(results.map((r) => r.conversation.id));
        expect(ids.size).toBe(1);
        expect(results.filter((r) => r.created)).toHaveLength(1);
        expect(results[0]!.conversation).toMatchObject({
          channel: 'whatsapp',
          channelRef: '+1555:+1666',
          meta: { src: 'wa' },
        });

        const again = await store.resolveConversation({ channel: 'whatsapp', channelRef: '+1555:+1666' });
        expect(again.created).toBe(false);
        expect(again.conversation.id).toBe([...ids][0]);

        const otherChannel = await store.resolveConversation({ channel: 'sms', channelRef: '+1555:+1666' });
        expect(otherChannel.created).toBe(true);
        expect(otherChannel.conversation.id).not.toBe(again.conversation.id);
      });

      it('makes an explicit channelRef of a created conversation resolvable', async () => {
        const c = await store.createConversation({ channel: 'webchat', channelRef: 'visitor-1' });
        const r = await store.resolveConversation({ channel: 'webchat', channelRef: 'visitor-1' });
        expect(r).toEqual({ conversation: c, created: false });
      });

      it('updates status, merges meta, upserts participants and replaces session state', async () => {
        const c = await store.createConversation({
          channel: 'api',
          meta: { a: '1', b: 2, keep: true },
          participants: [{ id: 'u1', role: 'user', name: 'Ann' }],
        });
        await sleep(5);
        const u = await store.updateConversation(c.id, {
          status: 'handoff',
          meta: { a: 'x', b: null, c: { deep: [1] } },
          participants: [
            { id: 'u1', role: 'user', name: 'Anna' },
            { id: 'a1', role: 'agent', name: 'Bob' },
          ],
          sessionState: { step: 2 },
        });
        expect(u).toMatchObject({
          id: c.id,
          status: 'handoff',
          meta: { a: 'x', keep: true, c: { deep: [1] } },
          participants: [
            { id: 'u1', role: 'user', name: 'Anna' },
            { id: 'a1', role: 'agent', name: 'Bob' },
          ],
          sessionState: { step: 2 },
          sessionId: c.sessionId,
          createdAt: c.createdAt,
        });
        expect(u!.meta).not.toHaveProperty('b');
        expect(u!.updatedAt > c.updatedAt).toBe(true);
        expect(await store.getConversation(c.id)).toEqual(u);

        const v = await store.updateConversation(c.id, { meta: { d: 'y' } });
        expect(v!.meta).toEqual({ a: 'x', keep: true, c: { deep: [1] }, d: 'y' });
        expect(v!.status).toBe('handoff');
        expect(v!.sessionState).toEqual({ step: 2 });
        expect(
          await store.updateConversation('conv_01ARZ3NDEKTSV4RRFFQ69G5FAV', { status: 'closed' }),
        ).toBeNull();
      });

      it('deletes a conversation with its messages and channelRef mapping', async () => {
        const { conversation: c } = await store.resolveConversation({
          channel: 'slack',
          channelRef: 'T1:C1:1.0',
        });
        const m = await store.appendMessage(c.id, user('hello'));
        expect(await store.deleteConversation(c.id)).toBe(true);
        expect(await store.deleteConversation(c.id)).toBe(false);
        expect(await store.getConversation(c.id)).toBeNull();
        expect(await store.getMessage(c.id, m!.id)).toBeNull();
        expect((await store.listMessages(c.id, { take: 10, order: 'asc' })).items).toEqual([]);
        expect((await store.listConversations({ take: 10, order: 'asc' })).items).toEqual([]);
        const again = await store.resolveConversation({ channel: 'slack', channelRef: 'T1:C1:1.0' });
        expect(again.created).toBe(true);
        expect(again.conversation.id).not.toBe(c.id);
      });

      describe('routes (contact scope)', () => {
        const sms = { channel: 'sms' as const, channelRef: '+1000|+1555', meta: {} };
        const chat = { channel: 'webchat' as const, channelRef: 'visitor-9', meta: { page: '/help' } };

        it('maps a further channel thread to a conversation and records the route once', async () => {
          const { conversation: c } = await store.resolveConversation({ ...sms, routes: [sms] });
          expect(c.routes).toEqual([sms]);
          expect(await store.findConversation('webchat', 'visitor-9')).toBeNull();
          const r = await store.addRoute(c.id, chat);
          expect(r?.added).toBe(true);
          expect(r?.conversation.routes).toEqual([sms, chat]);
          expect(r?.conversation.channel).toBe('sms');
          const again = await store.addRoute(c.id, chat);
          expect(again?.conversation.routes).toEqual([sms, chat]);
          expect((await store.findConversation('webchat', 'visitor-9'))?.id).toBe(c.id);
          expect((await store.findConversation('sms', '+1000|+1555'))?.id).toBe(c.id);
          const resolved = await store.resolveConversation({ channel: 'webchat', channelRef: 'visitor-9' });
          expect(resolved).toMatchObject({ created: false, conversation: { id: c.id } });
          expect((await store.getConversation(c.id))?.routes).toEqual([sms, chat]);
          // A patch leaves the routes alone.
          await store.updateConversation(c.id, { meta: { k: 'v' } });
          expect((await store.getConversation(c.id))?.routes).toEqual([sms, chat]);
        });

        it('never takes a thread another conversation holds, and answers that one', async () => {
          const { conversation: a } = await store.resolveConversation({ ...sms, routes: [sms] });
          const { conversation: b } = await store.resolveConversation({ ...chat, routes: [chat] });
          const r = await store.addRoute(a.id, chat);
          expect(r).toMatchObject({ added: false, conversation: { id: b.id } });
          expect((await store.getConversation(a.id))?.routes).toEqual([sms]);
          expect(await store.addRoute('conv_01ARZ3NDEKTSV4RRFFQ69G5FAV', chat)).toBeNull();
          expect(await store.findConversation('webchat', 'visitor-9')).toMatchObject({ id: b.id });
        });

        it('records the channel thread of each message', async () => {
          const { conversation: c } = await store.resolveConversation({ ...sms, routes: [sms] });
          const r = await store.accept(
            input(c.id, 'by chat', {
              message: user('by chat', { channel: 'webchat', channelRef: 'visitor-9' }),
            }),
          );
          expect(r.message).toMatchObject({ channel: 'webchat', channelRef: 'visitor-9' });
          const m = await store.appendMessage(
            c.id,
            bot('reply', { channel: 'webchat', channelRef: 'visitor-9' }),
          );
          expect(m).toMatchObject({ channel: 'webchat', channelRef: 'visitor-9' });
          expect(await store.getMessage(c.id, r.message.id)).toMatchObject({ channel: 'webchat' });
          const plain = await store.appendMessage(c.id, bot('no route'));
          expect(plain).not.toHaveProperty('channel');
        });

        it('deletes only an empty conversation when asked to, leaving a used one as it was', async () => {
          const { conversation: used } = await store.resolveConversation({ ...sms, routes: [sms] });
          await store.addRoute(used.id, chat);
          await store.accept(input(used.id, 'kept'));
          expect(await store.deleteConversation(used.id, { ifEmpty: true })).toBe(false);
          expect(await store.getConversation(used.id)).toMatchObject({ routes: [sms, chat] });
          expect((await store.findConversation('sms', '+1000|+1555'))?.id).toBe(used.id);
          expect((await store.findConversation('webchat', 'visitor-9'))?.id).toBe(used.id);
          expect(await store.listMessages(used.id, { take: 10, order: 'asc' })).toMatchObject({
            items: [{ text: 'kept' }],
          });
          const { conversation: empty } = await store.resolveConversation({
            channel: 'email',
            channelRef: '<root@example.com>',
          });
          expect(await store.deleteConversation(empty.id, { ifEmpty: true })).toBe(true);
          expect(await store.getConversation(empty.id)).toBeNull();
          expect(await store.findConversation('email', '<root@example.com>')).toBeNull();
        });

        it('deleting a conversation frees every thread it was reached by', async () => {
          const { conversation: c } = await store.resolveConversation({ ...sms, routes: [sms] });
          await store.addRoute(c.id, chat);
          expect(await store.deleteConversation(c.id)).toBe(true);
          expect(await store.findConversation('sms', '+1000|+1555')).toBeNull();
          expect(await store.findConversation('webchat', 'visitor-9')).toBeNull();
          const again = await store.resolveConversation({ channel: 'webchat', channelRef: 'visitor-9' });
          expect(again.created).toBe(true);
        });
      });

      it('pages conversations by id both ways, stable while conversations are added', async () => {
        const created: string[] = [];
        for (let i = 0; i < 7; i++) created.push((await open()).id);
        const asc = await allPages(
          (cursor) => store.listConversations({ take: 3, order: 'asc', ...(cursor ? { cursor } : {}) }),
          async (page) => {
            if (page === 1) for (let i = 0; i < 2; i++) created.push((await open()).id);
          },
        );
        expect(asc.map((p) => p.length)).toEqual([3, 3, 3]);
        expect(asc.flat().map((c) => c.id)).toEqual(created);

        const before = [...created];
        const desc = await allPages(
          (cursor) => store.listConversations({ take: 4, order: 'desc', ...(cursor ? { cursor } : {}) }),
          async (page) => {
            if (page === 1) created.push((await open()).id);
          },
        );
        expect(desc.map((p) => p.length)).toEqual([4, 4, 1]);
        expect(desc.flat().map((c) => c.id)).toEqual([...before].reverse());
      });

      it('filters conversations by channel, status and meta, across pages', async () => {
        const a = await store.createConversation({ channel: 'sms', meta: { tier: 'gold', n: 5 } });
        await store.createConversation({ channel: 'email', meta: { tier: 'gold' } });
        const c = await store.createConversation({ channel: 'sms', meta: { tier: 'gold', n: 5 } });
        await store.createConversation({ channel: 'sms', meta: { tier: 'silver' } });
        const e = await store.createConversation({
          channel: 'sms',
          meta: { tier: 'gold' },
          status: 'closed',
        });
        await store.updateConversation(c.id, { status: 'handoff' });

        const sms = await allPages((cursor) =>
          store.listConversations({
            take: 1,
            order: 'asc',
            channel: 'sms',
            meta: { tier: 'gold' },
            ...(cursor ? { cursor } : {}),
          }),
        );
        expect(sms.flat().map((x) => x.id)).toEqual([a.id, c.id, e.id]);
        const handoff = await store.listConversations({ take: 10, order: 'asc', status: 'handoff' });
        expect(handoff.items.map((x) => x.id)).toEqual([c.id]);
        const byNumber = await store.listConversations({ take: 10, order: 'desc', meta: { n: '5' } });
        expect(byNumber.items.map((x) => x.id)).toEqual([c.id, a.id]);
        const none = await store.listConversations({
          take: 10,
          order: 'asc',
          meta: { tier: 'gold', missing: 'x' },
        });
        expect(none).toEqual({ items: [], cursor: null });
      });

      it('rejects malformed cursors', async () => {
        await open();
        await open();
        const page = await store.listConversations({ take: 1, order: 'asc' });
        expect(page.cursor).not.toBeNull();
        for (const cursor of [
          '%%%',
          'bm90IGpzb24',
          Buffer.from('[1]').toString('base64url'),
          Buffer.from('{"s":1}').toString('base64url'),
        ]) {
          await expectCode(
            store.listConversations({ take: 1, order: 'asc', cursor }),
            'GW_ERR_INVALID_CURSOR',
          );
        }
        await expectCode(
          store.listMessages('conv_x', { take: 1, order: 'asc', cursor: page.cursor! }),
          'GW_ERR_INVALID_CURSOR',
        );
        await expectCode(
          store.listMessages('conv_x', { take: 1, order: 'asc', cursor: '!' }),
          'GW_ERR_INVALID_CURSOR',
        );
      });
    });

    describe('messages', () => {
      it('appends with increasing seqs in the current session and moves lastMessageAt', async () => {
        const c = await open();
        const m1 = await store.appendMessage(c.id, {
          type: 'context',
          text: 'ctx',
          direction: 'internal',
          name: 'n',
          description: 'd',
          meta: { k: 'v' },
          entities: [{ type: 'email', start: 0, end: 3 }],
          attachments: [{ url: 'https://x/y.png', contentType: 'image/png' }],
          quickReplies: [{ title: 'Yes' }],
        });
        const m2 = await store.appendMessage(
          c.id,
          bot('hi', { delivery: { status: 'pending', at: new Date().toISOString() } }),
        );
        expect(isId(m1!.id, 'msg')).toBe(true);
        expect(m1).toMatchObject({
          conversationId: c.id,
          seq: 1,
          type: 'context',
          text: 'ctx',
          direction: 'internal',
          name: 'n',
          description: 'd',
          meta: { k: 'v' },
          entities: [{ type: 'email', start: 0, end: 3 }],
          attachments: [{ url: 'https://x/y.png', contentType: 'image/png' }],
          quickReplies: [{ title: 'Yes' }],
          sessionId: c.sessionId,
        });
        expect(m1!.processing).toBeUndefined();
        expect(m2).toMatchObject({ seq: 2, direction: 'outbound', delivery: { status: 'pending' } });
        expect([m2!.meta, m2!.entities, m2!.attachments]).toEqual([{}, [], []]);
        expect(await store.getMessage(c.id, m1!.id)).toEqual(m1);
        expect(await store.getMessage(c.id, m2!.id)).toEqual(m2);
        const after = await store.getConversation(c.id);
        expect(after!.lastMessageAt).toBe(m2!.createdAt);
        expect(after!.updatedAt).toBe(m2!.createdAt);
        expect(await store.appendMessage('conv_01ARZ3NDEKTSV4RRFFQ69G5FAV', user('x'))).toBeNull();
        expect(await store.getMessage(c.id, 'msg_01ARZ3NDEKTSV4RRFFQ69G5FAV')).toBeNull();
      });

      it('pages messages by seq both ways, stable while messages are appended', async () => {
        const c = await open();
        for (let i = 1; i <= 5; i++) await store.appendMessage(c.id, user(`m${i}`));
        const asc = await allPages(
          (cursor) => store.listMessages(c.id, { take: 2, order: 'asc', ...(cursor ? { cursor } : {}) }),
          async (page) => {
            if (page === 1) for (let i = 6; i <= 8; i++) await store.appendMessage(c.id, user(`m${i}`));
          },
        );
        expect(asc.map(seqs)).toEqual([
          [1, 2],
          [3, 4],
          [5, 6],
          [7, 8],
        ]);
        expect(asc.flat().map((m) => m.text)).toEqual(['m1', 'm2', 'm3', 'm4', 'm5', 'm6', 'm7', 'm8']);

        const desc = await allPages(
          (cursor) => store.listMessages(c.id, { take: 3, order: 'desc', ...(cursor ? { cursor } : {}) }),
          async (page) => {
            if (page === 1) for (let i = 9; i <= 10; i++) await store.appendMessage(c.id, user(`m${i}`));
          },
        );
        expect(desc.map(seqs)).toEqual([
          [8, 7, 6],
          [5, 4, 3],
          [2, 1],
        ]);
        const exact = await store.listMessages(c.id, { take: 10, order: 'asc' });
        expect(exact.cursor).toBeNull();
        expect(seqs(exact.items)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        expect(
          await store.listMessages('conv_01ARZ3NDEKTSV4RRFFQ69G5FAV', { take: 5, order: 'asc' }),
        ).toEqual({
          items: [],
          cursor: null,
        });
      });

      it('filters messages by type and meta, across pages', async () => {
        const c = await open();
        await store.appendMessage(c.id, user('u1', { meta: { lang: 'en' } }));
        await store.appendMessage(c.id, bot('b1', { meta: { lang: 'en' } }));
        await store.appendMessage(c.id, user('u2', { meta: { lang: 'de' } }));
        await store.appendMessage(c.id, user('u3', { meta: { lang: 'en', score: 0.5 } }));
        await store.appendMessage(c.id, bot('b2'));
        const users = await allPages((cursor) =>
          store.listMessages(c.id, { take: 1, order: 'asc', type: 'user', ...(cursor ? { cursor } : {}) }),
        );
        expect(users.flat().map((m) => m.text)).toEqual(['u1', 'u2', 'u3']);
        const en = await store.listMessages(c.id, { take: 10, order: 'desc', meta: { lang: 'en' } });
        expect(en.items.map((m) => m.text)).toEqual(['u3', 'b1', 'u1']);
        const enUsers = await store.listMessages(c.id, {
          take: 10,
          order: 'asc',
          type: 'user',
          meta: { lang: 'en', score: '0.5' },
        });
        expect(enUsers.items.map((m) => m.text)).toEqual(['u3']);
      });

      it('finds filtered messages and conversations behind long runs of non-matching ones', async () => {
        const c = await open();
        await store.appendMessage(c.id, user('first'));
        for (let i = 0; i < 250; i++) await store.appendMessage(c.id, bot(`b${i}`));
        await store.appendMessage(c.id, user('last'));
        const asc = await allPages((cursor) =>
          store.listMessages(c.id, { take: 1, order: 'asc', type: 'user', ...(cursor ? { cursor } : {}) }),
        );
        expect(asc.flat().map((m) => m.text)).toEqual(['first', 'last']);
        const desc = await store.listMessages(c.id, { take: 5, order: 'desc', type: 'user' });
        expect(desc).toEqual({
          items: [expect.objectContaining({ text: 'last' }), expect.objectContaining({ text: 'first' })],
          cursor: null,
        });

        const wanted = await store.createConversation({ channel: 'email' });
        for (let i = 0; i < 230; i++) await open();
        const last = await store.createConversation({ channel: 'email' });
        const emails = await allPages((cursor) =>
          store.listConversations({ take: 1, order: 'asc', channel: 'email', ...(cursor ? { cursor } : {}) }),
        );
        expect(emails.flat().map((x) => x.id)).toEqual([wanted.id, last.id]);
      });

      it('returns messages after a seq', async () => {
        const c = await open();
        for (let i = 1; i <= 6; i++) await store.appendMessage(c.id, user(`m${i}`));
        expect(seqs(await store.messagesAfter(c.id, 2, 3))).toEqual([3, 4, 5]);
        expect(seqs(await store.messagesAfter(c.id, 0, 100))).toEqual([1, 2, 3, 4, 5, 6]);
        expect(await store.messagesAfter(c.id, 6, 10)).toEqual([]);
      });

      it('updates messages, merging meta and moving updatedAt', async () => {
        const c = await open();
        const m = await store.appendMessage(c.id, user('hello', { meta: { a: 1, b: 'x' } }));
        await sleep(5);
        const u = await store.updateMessage(c.id, m!.id, {
          text: 'hello there',
          meta: { b: null, c: 'new' },
          entities: [{ type: 'phone', start: 1, end: 4 }],
          externalId: 'SM1',
        });
        expect(u).toMatchObject({
          id: m!.id,
          seq: 1,
          text: 'hello there',
          meta: { a: 1, c: 'new' },
          entities: [{ type: 'phone', start: 1, end: 4 }],
          externalId: 'SM1',
          createdAt: m!.createdAt,
        });
        expect(u!.meta).not.toHaveProperty('b');
        expect(u!.updatedAt > m!.updatedAt).toBe(true);
        expect(await store.getMessage(c.id, m!.id)).toEqual(u);
        const p = await store.updateMessage(c.id, m!.id, {
          processing: {
            state: 'error',
            attempts: 3,
            error: { code: 'BOT_TIMEOUT', message: 'slow' },
            at: u!.updatedAt,
          },
        });
        expect(p!.processing).toEqual({
          state: 'error',
          attempts: 3,
          error: { code: 'BOT_TIMEOUT', message: 'slow' },
          at: u!.updatedAt,
        });
        expect(p!.text).toBe('hello there');
        expect(await store.getMessage(c.id, m!.id)).toEqual(p);
        expect(await store.updateMessage(c.id, 'msg_01ARZ3NDEKTSV4RRFFQ69G5FAV', { text: 'x' })).toBeNull();
      });

      it('deletes messages; the others keep their seq and seqs are never reused', async () => {
        const c = await open();
        const ms: Message[] = [];
        for (let i = 1; i <= 4; i++) ms.push((await store.appendMessage(c.id, user(`m${i}`)))!);
        expect(await store.deleteMessage(c.id, ms[1]!.id)).toBe(true);
        expect(await store.deleteMessage(c.id, ms[3]!.id)).toBe(true);
        expect(await store.deleteMessage(c.id, ms[3]!.id)).toBe(false);
        expect(await store.getMessage(c.id, ms[1]!.id)).toBeNull();
        const next = await store.appendMessage(c.id, user('m5'));
        expect(next!.seq).toBe(5);
        const all = await store.listMessages(c.id, { take: 10, order: 'asc' });
        expect(all.items.map((m) => [m.seq, m.text])).toEqual([
          [1, 'm1'],
          [3, 'm3'],
          [5, 'm5'],
        ]);
        expect(await store.getMessage(c.id, ms[2]!.id)).toEqual(ms[2]);
      });

      it('gives 60 concurrent writers distinct, gap-free seqs', async () => {
        const c = await open();
        const inbound: Message[] = [];
        for (let i = 0; i < 20; i++) inbound.push((await store.accept(input(c.id, `q${i}`))).message);
        const results = await Promise.all(
          Array.from({ length: 60 }, (_, i) => {
            if (i % 3 === 0) return store.appendMessage(c.id, bot(`b${i}`));
            if (i % 3 === 1) return store.accept(input(c.id, `u${i}`)).then((r) => r.message);
            return store.recordReplies(c.id, inbound[(i - 2) / 3]!.id, [bot(`r${i}`)]).then((r) => r[0]!);
          }),
        );
        const got = results.map((m) => m!.seq).sort((a, b) => a - b);
        expect(got).toEqual(Array.from({ length: 60 }, (_, i) => i + 21));
        const listed = await store.listMessages(c.id, { take: 100, order: 'asc' });
        expect(seqs(listed.items)).toEqual(Array.from({ length: 80 }, (_, i) => i + 1));
      });

      it('moves delivery status only forward; failed is terminal and keeps its error', async () => {
        const c = await open();
        const m = await store.appendMessage(
          c.id,
          bot('out', { delivery: { status: 'pending', at: new Date().toISOString() } }),
        );
        const sent = await store.updateDelivery(c.id, m!.id, 'sent');
        expect(sent!.changed).toBe(true);
        expect(sent!.message.delivery!.status).toBe('sent');
        expect((await store.updateDelivery(c.id, m!.id, 'read'))!.changed).toBe(true);
        const late = await store.updateDelivery(c.id, m!.id, 'delivered');
        expect(late).toMatchObject({ changed: false, message: { delivery: { status: 'read' } } });
        expect((await store.updateDelivery(c.id, m!.id, 'read'))!.changed).toBe(false);
        const failed = await store.updateDelivery(c.id, m!.id, 'failed', {
          code: '30003',
          message: 'unreachable',
        });
        expect(failed!.changed).toBe(true);
        expect(failed!.message.delivery).toMatchObject({
          status: 'failed',
          error: { code: '30003', message: 'unreachable' },
        });
        expect((await store.updateDelivery(c.id, m!.id, 'read'))!.changed).toBe(false);
        expect((await store.updateDelivery(c.id, m!.id, 'failed'))!.changed).toBe(false);
        expect((await store.getMessage(c.id, m!.id))!.delivery).toEqual(failed!.message.delivery);
        expect(await store.updateDelivery(c.id, 'msg_01ARZ3NDEKTSV4RRFFQ69G5FAV', 'sent')).toBeNull();
      });

      it('settles concurrent delivery callbacks on the furthest status', async () => {
        const c = await open();
        const m = await store.appendMessage(
          c.id,
          bot('out', { delivery: { status: 'pending', at: new Date().toISOString() } }),
        );
        const results = await Promise.all(
          (['delivered', 'sent', 'read', 'sent', 'delivered'] as const).map((s) =>
            store.updateDelivery(c.id, m!.id, s),
          ),
        );
        expect(results.some((r) => r!.message.delivery!.status === 'read' && r!.changed)).toBe(true);
        expect((await store.getMessage(c.id, m!.id))!.delivery!.status).toBe('read');
      });

      it('stores the provider id with the delivery step, whether or not the status moves', async () => {
        const c = await open();
        const m = await store.appendMessage(
          c.id,
          bot('out', { delivery: { status: 'pending', at: new Date().toISOString() } }),
        );
        const sent = await store.updateDelivery(c.id, m!.id, 'sent', undefined, { externalId: 'SM1' });
        expect(sent).toMatchObject({
          changed: true,
          message: { externalId: 'SM1', delivery: { status: 'sent' } },
        });
        expect(await store.getMessage(c.id, m!.id)).toEqual(sent!.message);
        const again = await store.updateDelivery(c.id, m!.id, 'sent', undefined, { externalId: 'SM2' });
        expect(again).toMatchObject({
          changed: false,
          message: { externalId: 'SM2', delivery: { status: 'sent' } },
        });
        expect(await store.getMessage(c.id, m!.id)).toEqual(again!.message);
        const same = await store.updateDelivery(c.id, m!.id, 'sent', undefined, { externalId: 'SM2' });
        expect(same).toEqual({ changed: false, message: again!.message });
      });

      it("applies a delivery step to the caller's copy, and a stale copy never wins", async () => {
        const c = await open();
        const inbound = await store.appendMessage(c.id, user('hi'));
        const [reply] = await store.recordReplies(c.id, inbound!.id, [
          bot('out', { delivery: { status: 'pending', at: new Date().toISOString() } }),
        ]);
        const sent = await store.updateDelivery(c.id, reply!.id, 'sent', undefined, { known: reply });
        expect(sent).toMatchObject({ changed: true, message: { delivery: { status: 'sent' } } });
        expect(await store.getMessage(c.id, reply!.id)).toEqual(sent!.message);

        // The copy still says pending: the steps apply to the stored message instead.
        const stale = await store.updateDelivery(c.id, reply!.id, 'sent', undefined, { known: reply });
        expect(stale).toMatchObject({ changed: false, message: { delivery: { status: 'sent' } } });
        await store.updateMessage(c.id, reply!.id, { meta: { edited: true } });
        const read = await store.updateDelivery(c.id, reply!.id, 'read', undefined, { known: reply });
        expect(read).toMatchObject({
          changed: true,
          message: { meta: { edited: true }, delivery: { status: 'read' } },
        });
        expect(await store.getMessage(c.id, reply!.id)).toEqual(read!.message);
        const late = await store.updateDelivery(c.id, reply!.id, 'delivered', undefined, {
          known: sent!.message,
        });
        expect(late).toMatchObject({ changed: false, message: { delivery: { status: 'read' } } });
        expect((await store.getMessage(c.id, reply!.id))!.delivery!.status).toBe('read');
      });

      it('records replies exactly once, even under concurrency', async () => {
        const c = await open();
        const { message: inbound } = await store.accept(input(c.id, 'question'));
        const callers = await Promise.all(
          Array.from({ length: 8 }, (_, i) =>
            store.recordReplies(c.id, inbound.id, [bot(`a${i}`), bot(`b${i}`)]),
          ),
        );
        const first = callers[0]!;
        expect(first).toHaveLength(2);
        for (const r of callers) expect(r).toEqual(first);
        expect(seqs(first)).toEqual([2, 3]);
        expect(first[0]!.text[0]).toBe('a');
        expect(first.every((m) => m.replyTo === inbound.id && m.sessionId === c.sessionId)).toBe(true);
        const stored = await store.getMessage(c.id, inbound.id);
        expect(stored!.processing!.replyIds).toEqual(first.map((m) => m.id));
        expect((await store.listMessages(c.id, { take: 50, order: 'asc' })).items).toHaveLength(3);
        expect(await store.recordReplies(c.id, inbound.id, [bot('late')])).toEqual(first);

        const { message: quiet } = await store.accept(input(c.id, 'no answer'));
        expect(await store.recordReplies(c.id, quiet.id, [])).toEqual([]);
        expect(await store.recordReplies(c.id, quiet.id, [bot('too late')])).toEqual([]);
        expect((await store.getMessage(c.id, quiet.id))!.processing!.replyIds).toEqual([]);
        expect(await store.recordReplies('conv_01ARZ3NDEKTSV4RRFFQ69G5FAV', quiet.id, [bot('x')])).toEqual(
          [],
        );
      });

      it('grants claimSend exactly once per message', async () => {
        const c = await open();
        const m = await store.appendMessage(c.id, bot('out'));
        const grants = await Promise.all(Array.from({ length: 10 }, () => store.claimSend(c.id, m!.id)));
        expect(grants.filter(Boolean)).toHaveLength(1);
        expect(await store.claimSend(c.id, m!.id)).toBe(false);
        const other = await store.appendMessage(c.id, bot('out2'));
        expect(await store.claimSend(c.id, other!.id)).toBe(true);
      });
    });

    describe('accept', () => {
      it('stores, queues and answers with the message', async () => {
        const c = await open();
        const r = await store.accept(
          input(c.id, 'hi', { message: user('hi', { clientMessageId: 'c1', externalId: 'SM1' }) }),
        );
        expect(r.duplicate).toBe(false);
        expect(r.sessionStarted).toBe(false);
        expect(r.endedSessionId).toBeUndefined();
        expect(r.message).toMatchObject({
          conversationId: c.id,
          seq: 1,
          type: 'user',
          text: 'hi',
          direction: 'inbound',
          clientMessageId: 'c1',
          externalId: 'SM1',
          sessionId: c.sessionId,
          processing: { state: 'queued', attempts: 0 },
        });
        expect(await store.getMessage(c.id, r.message.id)).toEqual(r.message);
        expect(await store.pendingCount()).toBe(1);
        const after = await store.getConversation(c.id);
        expect(after!.lastMessageAt).toBe(r.message.createdAt);
        expect(after!.sessionId).toBe(c.sessionId);
        await expectCode(store.accept(input('conv_01ARZ3NDEKTSV4RRFFQ69G5FAV', 'x')), 'GW_ERR_NOT_FOUND');
      });

      it('dedupes on the dedupe key per conversation, writing nothing for a repeat', async () => {
        const c = await open();
        const d = await open();
        const first = await store.accept(input(c.id, 'one', { dedupeKey: 'twilio:SM1' }));
        const repeat = await store.accept(input(c.id, 'one again', { dedupeKey: 'twilio:SM1' }));
        expect(repeat.duplicate).toBe(true);
        expect(repeat.message).toEqual(first.message);
        expect((await store.listMessages(c.id, { take: 10, order: 'asc' })).items).toHaveLength(1);
        expect(await store.pendingCount()).toBe(1);
        const elsewhere = await store.accept(input(d.id, 'one', { dedupeKey: 'twilio:SM1' }));
        expect(elsewhere.duplicate).toBe(false);

        const racing = await Promise.all(
          Array.from({ length: 10 }, () => store.accept(input(c.id, 'race', { dedupeKey: 'client:abc' }))),
        );
        expect(racing.filter((r) => !r.duplicate)).toHaveLength(1);
        expect(new Set(racing.map((r) => r.message.id)).size).toBe(1);
        expect((await store.listMessages(c.id, { take: 10, order: 'asc' })).items).toHaveLength(2);
      });

      it('forgets a dedupe key after its TTL', async () => {
        const c = await open();
        const first = await store.accept(input(c.id, 'one', { dedupeKey: 'k', dedupeTtlS: 1 }));
        expect((await store.accept(input(c.id, 'one', { dedupeKey: 'k', dedupeTtlS: 1 }))).duplicate).toBe(
          true,
        );
        await sleep(1_300);
        const later = await store.accept(input(c.id, 'one', { dedupeKey: 'k', dedupeTtlS: 1 }));
        expect(later.duplicate).toBe(false);
        expect(later.message.id).not.toBe(first.message.id);
        expect(later.message.seq).toBe(2);
      });

      it('stores without queueing when asked', async () => {
        const c = await open();
        const r = await store.accept(
          input(c.id, 'bounce', { skipQueue: true, message: user('bounce', { type: 'activity' }) }),
        );
        expect(r.message.processing).toBeUndefined();
        expect(r.message).toMatchObject({ seq: 1, type: 'activity', direction: 'inbound' });
        expect(await store.pendingCount()).toBe(0);
        expect(await store.claim('w1', 10, 30_000)).toEqual([]);
        expect((await store.getConversation(c.id))!.lastMessageAt).toBe(r.message.createdAt);
      });

      it('starts a new session after the idle time', async () => {
        const c = await open();
        const idle = { sessionIdleS: 1 };
        const a = await store.accept(input(c.id, 'a', idle));
        const b = await store.accept(input(c.id, 'b', idle));
        expect(a.sessionStarted).toBe(false);
        expect(b.sessionStarted).toBe(false);
        expect(b.message.sessionId).toBe(c.sessionId);
        await store.updateConversation(c.id, { sessionState: { cart: 3 } });
        await sleep(1_300);
        const rolled = await store.accept(input(c.id, 'c', idle));
        expect(rolled.sessionStarted).toBe(true);
        expect(rolled.endedSessionId).toBe(c.sessionId);
        expect(isId(rolled.message.sessionId!, 'sess')).toBe(true);
        expect(rolled.message.sessionId).not.toBe(c.sessionId);
        const after = await store.getConversation(c.id);
        expect(after).toMatchObject({
          sessionId: rolled.message.sessionId,
          sessionStartedAt: rolled.message.createdAt,
        });
        expect(after!.sessionState).toEqual({});
        const next = await store.accept(input(c.id, 'd', idle));
        expect(next.sessionStarted).toBe(false);
        expect(next.message.sessionId).toBe(rolled.message.sessionId);
      });

      it('counts replies and appended messages as activity', async () => {
        const c = await open();
        const idle = { sessionIdleS: 1 };
        const a = await store.accept(input(c.id, 'a', idle));
        await sleep(700);
        await store.recordReplies(c.id, a.message.id, [bot('r')]);
        await sleep(700);
        const b = await store.accept(input(c.id, 'b', idle));
        expect(b.sessionStarted).toBe(false);
        await sleep(700);
        await store.appendMessage(c.id, bot('agent note'));
        await sleep(700);
        expect((await store.accept(input(c.id, 'c', idle))).sessionStarted).toBe(false);
      });

      it('does not roll the session on a duplicate', async () => {
        const c = await open();
        await store.accept(input(c.id, 'a', { dedupeKey: 'same', sessionIdleS: 1 }));
        await sleep(1_300);
        const dup = await store.accept(input(c.id, 'a', { dedupeKey: 'same', sessionIdleS: 1 }));
        expect(dup).toMatchObject({ duplicate: true, sessionStarted: false });
        expect((await store.getConversation(c.id))!.sessionId).toBe(c.sessionId);
      });
    });

    describe('queue', () => {
      it('claims one head per conversation, in parallel across conversations', async () => {
        const a = await open();
        const b = await open();
        const a1 = await store.accept(input(a.id, 'a1'));
        const a2 = await store.accept(input(a.id, 'a2'));
        const b1 = await store.accept(input(b.id, 'b1'));
        expect(await store.pendingCount()).toBe(3);

        const claims = await store.claim('w1', 10, 30_000);
        expect(claims.map((cl) => cl.message.id).sort()).toEqual([a1.message.id, b1.message.id].sort());
        for (const cl of claims) {
          expect(cl.deliveries).toBe(1);
          expect(cl.token).toEqual(expect.any(String));
          expect(cl.message.processing).toMatchObject({ state: 'processing', attempts: 1 });
          expect((await store.getMessage(cl.conversationId, cl.message.id))!.processing).toMatchObject({
            state: 'processing',
            attempts: 1,
          });
        }
        expect(await store.claim('w2', 10, 30_000)).toEqual([]);

        const claimA = claims.find((cl) => cl.conversationId === a.id)!;
        expect(await store.complete(claimA)).toEqual(DONE);
        expect(await store.pendingCount()).toBe(2);
        const next = await claimOne('w2');
        expect(next.message.id).toBe(a2.message.id);
        expect(next.message.seq).toBe(2);
        expect(await store.complete(claimA)).toEqual(LOST);
      });

      it('hands out a conversation strictly in seq order', async () => {
        const c = await open();
        for (let i = 1; i <= 5; i++) await store.accept(input(c.id, `m${i}`));
        const order: number[] = [];
        for (let i = 0; i < 5; i++) {
          const cl = await claimOne();
          order.push(cl.message.seq);
          expect(await store.claim('w2', 5, 30_000)).toEqual([]);
          expect(await store.complete(cl)).toEqual(DONE);
        }
        expect(order).toEqual([1, 2, 3, 4, 5]);
        expect(await store.claim('w1', 5, 30_000)).toEqual([]);
        expect(await store.pendingCount()).toBe(0);
      });

      it('claims up to max conversations per call', async () => {
        const ids: string[] = [];
        for (let i = 0; i < 20; i++) {
          const c = await open();
          ids.push(c.id);
          await store.accept(input(c.id, `m${i}`));
        }
        const first = await store.claim('w1', 5, 30_000);
        expect(first).toHaveLength(5);
        const rest = await store.claim('w2', 100, 30_000);
        expect(rest).toHaveLength(15);
        const claimed = [...first, ...rest].map((cl) => cl.conversationId);
        expect(new Set(claimed).size).toBe(20);
        expect(claimed.sort()).toEqual([...ids].sort());
        expect(await store.claim('w1', 0, 30_000)).toEqual([]);
      });

      it('never leases one conversation twice, even to racing claimers', async () => {
        const ids: string[] = [];
        for (let i = 0; i < 10; i++) {
          const c = await open();
          ids.push(c.id);
          await store.accept(input(c.id, `a${i}`));
          await store.accept(input(c.id, `b${i}`));
        }
        const racing = (
          await Promise.all(Array.from({ length: 8 }, (_, i) => store.claim(`w${i}`, 5, 30_000)))
        ).flat();
        const held = racing.map((cl) => cl.conversationId);
        expect(new Set(held).size).toBe(held.length);
        const rest = await store.claim('late', 100, 30_000);
        const all = [...racing, ...rest];
        expect(all.map((cl) => cl.conversationId).sort()).toEqual([...ids].sort());
        expect(all.every((cl) => cl.message.seq === 1 && cl.deliveries === 1)).toBe(true);
      });

      it('redelivers after the lease expires and fences off the old token', async () => {
        const c = await open();
        const { message } = await store.accept(input(c.id, 'hi'));
        const old = await claimOne('w1', 300);
        expect(await store.claim('w2', 1, 30_000)).toEqual([]);
        await sleep(500);
        const again = await claimOne('w2');
        expect(again.message.id).toBe(message.id);
        expect(again.deliveries).toBe(2);
        expect(again.message.processing).toMatchObject({ state: 'processing', attempts: 2 });
        expect(again.token).not.toBe(old.token);
        expect(await store.heartbeat(old, 30_000)).toBe(false);
        expect(await store.complete(old)).toEqual(LOST);
        await store.release(old);
        expect(await store.claim('w3', 1, 30_000)).toEqual([]);
        expect(await store.heartbeat(again, 30_000)).toBe(true);
        expect(await store.complete(again)).toEqual(DONE);
        expect(await store.pendingCount()).toBe(0);
      });

      it('keeps a lease alive with heartbeats', async () => {
        const c = await open();
        await store.accept(input(c.id, 'hi'));
        const cl = await claimOne('w1', 400);
        await sleep(250);
        expect(await store.heartbeat(cl, 1_000)).toBe(true);
        await sleep(300);
        expect(await store.claim('w2', 1, 30_000)).toEqual([]);
        expect(await store.complete(cl)).toEqual(DONE);
      });

      it('makes a released message claimable at once', async () => {
        const c = await open();
        const { message } = await store.accept(input(c.id, 'hi'));
        const cl = await claimOne('w1');
        await store.release(cl);
        expect((await store.getMessage(c.id, message.id))!.processing!.state).toBe('queued');
        expect(await store.complete(cl)).toEqual(LOST);
        const again = await claimOne('w2');
        expect(again.message.id).toBe(message.id);
        expect(again.deliveries).toBe(2);
        expect(await store.pendingCount()).toBe(1);
      });

      it('drops the queue and pending count of a deleted conversation', async () => {
        const a = await open();
        const b = await open();
        for (let i = 0; i < 3; i++) await store.accept(input(a.id, `a${i}`));
        const { message: b1 } = await store.accept(input(b.id, 'b1'));
        const claims = await store.claim('w1', 10, 30_000);
        expect(claims).toHaveLength(2);
        expect(await store.deleteConversation(a.id)).toBe(true);
        expect(await store.pendingCount()).toBe(1);
        const claimA = claims.find((cl) => cl.conversationId === a.id)!;
        expect(await store.complete(claimA)).toEqual(LOST);
        expect(await store.heartbeat(claimA, 1_000)).toBe(false);
        const claimB = claims.find((cl) => cl.conversationId === b.id)!;
        expect(claimB.message.id).toBe(b1.id);
        expect(await store.complete(claimB)).toEqual(DONE);
        expect(await store.claim('w1', 10, 30_000)).toEqual([]);
        expect(await store.pendingCount()).toBe(0);
      });

      it('skips messages deleted while queued', async () => {
        const c = await open();
        const ms: Message[] = [];
        for (let i = 1; i <= 4; i++) ms.push((await store.accept(input(c.id, `m${i}`))).message);
        expect(await store.deleteMessage(c.id, ms[0]!.id)).toBe(true);
        expect(await store.deleteMessage(c.id, ms[2]!.id)).toBe(true);
        const first = await claimOne();
        expect(first.message.id).toBe(ms[1]!.id);
        expect(await store.complete(first)).toEqual(DONE);
        const second = await claimOne();
        expect(second.message.id).toBe(ms[3]!.id);
        expect(await store.complete(second)).toEqual(DONE);
        expect(await store.claim('w1', 10, 30_000)).toEqual([]);
        expect(await store.pendingCount()).toBe(0);
      });

      it('completes a claim whose message was deleted meanwhile without touching the next one', async () => {
        const c = await open();
        const m1 = (await store.accept(input(c.id, 'm1'))).message;
        const m2 = (await store.accept(input(c.id, 'm2'))).message;
        const cl = await claimOne();
        expect(cl.message.id).toBe(m1.id);
        expect(await store.deleteMessage(c.id, m1.id)).toBe(true);
        expect(await store.complete(cl)).toEqual(DONE);
        const next = await claimOne();
        expect(next.message.id).toBe(m2.id);
      });

      it('carries the conversation, as it is when leased, with each claim', async () => {
        const c = await store.createConversation({ channel: 'api', meta: { plan: 'pro' } });
        await store.accept(input(c.id, 'm1'));
        await store.accept(input(c.id, 'm2'));
        const first = await claimOne();
        expect(first.conversation).toEqual(await store.getConversation(c.id));
        expect(first.conversation).toMatchObject({ id: c.id, channel: 'api', meta: { plan: 'pro' } });
        await store.updateConversation(c.id, { status: 'handoff', sessionState: { step: 2 } });
        const { next } = await store.complete(
          first,
          { state: 'done', attempts: 1 },
          { owner: 'w1', leaseMs: 30_000 },
        );
        expect(next!.conversation).toEqual(await store.getConversation(c.id));
        expect(next!.conversation).toMatchObject({ status: 'handoff', sessionState: { step: 2 } });
      });

      it('records the outcome on completion, and only while the lease is held', async () => {
        const c = await open();
        const { message } = await store.accept(input(c.id, 'hi'));
        const old = await claimOne('w1', 300);
        await sleep(500);
        const again = await claimOne('w2');
        const error = { code: 'BOT_FAILED', message: 'boom' };
        expect(await store.complete(old, { state: 'done', attempts: 1 })).toEqual(LOST);
        expect((await store.getMessage(c.id, message.id))!.processing).toMatchObject({
          state: 'processing',
          attempts: 2,
        });
        expect(await store.complete(again, { state: 'error', attempts: 2, error })).toEqual(DONE);
        const stored = (await store.getMessage(c.id, message.id))!;
        expect(stored.processing).toEqual({ state: 'error', attempts: 2, error, at: expect.any(String) });
        expect(stored.updatedAt).toBe(message.updatedAt);
        expect(await store.pendingCount()).toBe(0);
      });

      it('continues with the next message in seq order under a new token, then frees the conversation', async () => {
        const c = await open();
        const ms: Message[] = [];
        for (let i = 1; i <= 3; i++) ms.push((await store.accept(input(c.id, `m${i}`))).message);
        const next = { owner: 'w1', leaseMs: 30_000 };
        const first = await claimOne();
        expect(first.message.id).toBe(ms[0]!.id);

        const r1 = await store.complete(first, { state: 'done', attempts: 1 }, next);
        expect(r1).toMatchObject({ completed: true, notify: false });
        const second = r1.next!;
        expect(second.conversationId).toBe(c.id);
        expect(second.message.id).toBe(ms[1]!.id);
        expect(second.deliveries).toBe(1);
        expect(second.message.processing).toMatchObject({ state: 'processing', attempts: 1 });
        expect(second.token).not.toBe(first.token);
        expect((await store.getMessage(c.id, ms[0]!.id))!.processing).toMatchObject({
          state: 'done',
          attempts: 1,
        });
        expect((await store.getMessage(c.id, ms[1]!.id))!.processing).toMatchObject({
          state: 'processing',
          attempts: 1,
        });
        expect(await store.pendingCount()).toBe(2);
        // The conversation stays leased, and the old token is fenced off.
        expect(await store.claim('w2', 5, 30_000)).toEqual([]);
        expect(await store.heartbeat(first, 30_000)).toBe(false);
        expect(await store.complete(first, { state: 'done', attempts: 1 }, next)).toEqual(LOST);
        await store.release(first);
        expect(await store.claim('w2', 5, 30_000)).toEqual([]);
        expect(await store.heartbeat(second, 30_000)).toBe(true);

        const third = (await store.complete(second, { state: 'done', attempts: 1 }, next)).next!;
        expect(third.message.id).toBe(ms[2]!.id);
        expect(await store.pendingCount()).toBe(1);
        expect(await store.complete(third, { state: 'done', attempts: 1 }, next)).toEqual(DONE);
        expect(await store.pendingCount()).toBe(0);
        expect(await store.claim('w2', 5, 30_000)).toEqual([]);

        // Freed: the next message is claimable at once, by anyone.
        const { message: m4 } = await store.accept(input(c.id, 'm4'));
        expect((await claimOne('w2')).message.id).toBe(m4.id);
      });

      it('records replies in the completing step, once, and not at all once the lease is lost', async () => {
        const c = await open();
        const { message: m1 } = await store.accept(input(c.id, 'm1'));
        const { message: m2 } = await store.accept(input(c.id, 'm2'));
        const sent = { status: 'sent' as const, at: new Date().toISOString() };
        const next = { owner: 'w1', leaseMs: 30_000 };
        const first = await claimOne();

        // A lost lease writes nothing, replies included.
        await store.release(first);
        const again = await claimOne('w2');
        const lost = await store.complete(first, { state: 'done', attempts: 1 }, next, [bot('stale')]);
        expect(lost).toEqual(LOST);
        expect((await store.listMessages(c.id, { take: 50, order: 'asc' })).items).toHaveLength(2);

        const done = await store.complete(again, { state: 'done', attempts: 2 }, next, [
          bot('a', { delivery: sent }),
          bot('b', { delivery: sent }),
        ]);
        expect(done).toMatchObject({ completed: true, notify: false, repliesRecorded: true });
        expect(done.next!.message.id).toBe(m2.id);
        const replies = done.replies!;
        // The replies take the seqs after both accepted messages, in order.
        expect(replies.map((m) => [m.text, m.seq, m.replyTo, m.delivery?.status])).toEqual([
          ['a', 3, m1.id, 'sent'],
          ['b', 4, m1.id, 'sent'],
        ]);
        expect(replies.every((m) => m.sessionId === c.sessionId && m.direction === 'outbound')).toBe(true);
        for (const reply of replies) expect(await store.getMessage(c.id, reply.id)).toEqual(reply);
        const answered = (await store.getMessage(c.id, m1.id))!;
        expect(answered.processing).toMatchObject({
          state: 'done',
          attempts: 2,
          replyIds: replies.map((m) => m.id),
        });
        expect((await store.getConversation(c.id))!.lastMessageAt).toBe(replies[1]!.createdAt);
        expect(await store.pendingCount()).toBe(1);

        // Replies recorded before (another path, an earlier attempt) are kept, and reported as such.
        const [early] = await store.recordReplies(c.id, m2.id, [bot('early')]);
        const late = await store.complete(done.next!, { state: 'done', attempts: 1 }, undefined, [
          bot('late'),
        ]);
        expect(late).toMatchObject({ completed: true, repliesRecorded: false, replies: [early] });
        expect((await store.listMessages(c.id, { take: 50, order: 'asc' })).items.map((m) => m.text)).toEqual(
          ['m1', 'm2', 'a', 'b', 'early'],
        );
        expect(await store.pendingCount()).toBe(0);

        // No replies given, nothing reported; an empty list records that the bot had nothing to say.
        const { message: m3 } = await store.accept(input(c.id, 'm3'));
        const quiet = await store.complete(await claimOne(), { state: 'done', attempts: 1 }, undefined, []);
        expect(quiet).toEqual({ ...DONE, replies: [], repliesRecorded: true });
        expect((await store.getMessage(c.id, m3.id))!.processing!.replyIds).toEqual([]);
      });

      it('without a continuation, leaves the next message claimable at once', async () => {
        const c = await open();
        await store.accept(input(c.id, 'm1'));
        const { message: m2 } = await store.accept(input(c.id, 'm2'));
        expect(await store.complete(await claimOne(), { state: 'done', attempts: 1 })).toEqual(DONE);
        const again = await claimOne('w2');
        expect(again.message.id).toBe(m2.id);
        expect(again.deliveries).toBe(1);
      });

      it('skips messages deleted while queued when continuing', async () => {
        const c = await open();
        const ms: Message[] = [];
        for (let i = 1; i <= 3; i++) ms.push((await store.accept(input(c.id, `m${i}`))).message);
        const first = await claimOne();
        expect(await store.deleteMessage(c.id, ms[1]!.id)).toBe(true);
        const { next } = await store.complete(
          first,
          { state: 'done', attempts: 1 },
          { owner: 'w1', leaseMs: 30_000 },
        );
        expect(next!.message.id).toBe(ms[2]!.id);
        expect(await store.pendingCount()).toBe(1);
        expect(await store.complete(next!, { state: 'done', attempts: 1 })).toEqual(DONE);
        expect(await store.pendingCount()).toBe(0);
      });

      it('redelivers a continued message after its lease expires, counting the delivery', async () => {
        const c = await open();
        await store.accept(input(c.id, 'm1'));
        const { message: m2 } = await store.accept(input(c.id, 'm2'));
        const first = await claimOne('w1');
        const { next } = await store.complete(
          first,
          { state: 'done', attempts: 1 },
          { owner: 'w1', leaseMs: 300 },
        );
        expect(next!.message.id).toBe(m2.id);
        expect(await store.claim('w2', 1, 30_000)).toEqual([]);
        await sleep(500);
        const again = await claimOne('w2');
        expect(again.message.id).toBe(m2.id);
        expect(again.deliveries).toBe(2);
        expect(again.message.processing).toMatchObject({ state: 'processing', attempts: 2 });
        expect(await store.heartbeat(next!, 30_000)).toBe(false);
        expect(await store.complete(next!, { state: 'done', attempts: 1 })).toEqual(LOST);
        expect(await store.complete(again, { state: 'done', attempts: 2 })).toEqual(DONE);
        expect((await store.getMessage(c.id, m2.id))!.processing).toMatchObject({
          state: 'done',
          attempts: 2,
        });
        expect(await store.pendingCount()).toBe(0);
      });

      it('reports notify for messages accepted with it, including through a duplicate', async () => {
        const c = await open();
        const plain = await store.accept(input(c.id, 'plain'));
        const waited = await store.accept(input(c.id, 'waited', { notify: true }));
        const later = await store.accept(input(c.id, 'later', { dedupeKey: 'later' }));
        const next = { owner: 'w1', leaseMs: 30_000 };
        const first = await claimOne();
        expect(first.message.id).toBe(plain.message.id);
        expect(first.message.processing).not.toHaveProperty('notify');
        // A repeat that waits marks the original while it is unfinished.
        expect(
          (await store.accept(input(c.id, 'later', { dedupeKey: 'later', notify: true }))).duplicate,
        ).toBe(true);
        const r1 = await store.complete(first, { state: 'done', attempts: 1 }, next);
        expect(r1.notify).toBe(false);
        expect(r1.next!.message.id).toBe(waited.message.id);
        const r2 = await store.complete(r1.next!, { state: 'done', attempts: 1 }, next);
        expect(r2.notify).toBe(true);
        expect(r2.next!.message.id).toBe(later.message.id);
        expect(await store.complete(r2.next!, { state: 'done', attempts: 1 })).toEqual({
          ...DONE,
          notify: true,
        });
        // A repeat of a finished message marks nothing.
        expect(
          (await store.accept(input(c.id, 'later', { dedupeKey: 'later', notify: true }))).duplicate,
        ).toBe(true);
        const { message: last } = await store.accept(input(c.id, 'last'));
        const cl = await claimOne();
        expect(cl.message.id).toBe(last.id);
        expect(await store.complete(cl, { state: 'done', attempts: 1 })).toEqual(DONE);
      });

      it('wakes a waiting worker when work arrives, and otherwise after the timeout', async () => {
        let t0 = Date.now();
        await store.waitForWork(300);
        const idle = Date.now() - t0;
        expect(idle).toBeGreaterThanOrEqual(250);
        expect(idle).toBeLessThan(2_000);

        const c = await open();
        t0 = Date.now();
        const waiting = store.waitForWork(10_000);
        setTimeout(() => void store.accept(input(c.id, 'wake up')), 150);
        await waiting;
        const woke = Date.now() - t0;
        expect(woke).toBeGreaterThanOrEqual(100);
        expect(woke).toBeLessThan(2_000);
        const cl = await claimOne();

        // A ring while nobody waits is not lost.
        const d = await open();
        await store.accept(input(d.id, 'queued before the wait'));
        t0 = Date.now();
        await store.waitForWork(10_000);
        expect(Date.now() - t0).toBeLessThan(2_000);

        // Completing with more messages waiting rings as well.
        await store.accept(input(c.id, 'second'));
        t0 = Date.now();
        const again = store.waitForWork(10_000);
        setTimeout(() => void store.complete(cl), 100);
        await again;
        expect(Date.now() - t0).toBeLessThan(2_000);
      });

      it('stops waiting when aborted', async () => {
        const ac = new AbortController();
        const t0 = Date.now();
        setTimeout(() => ac.abort(), 100);
        await store.waitForWork(10_000, ac.signal);
        expect(Date.now() - t0).toBeLessThan(2_000);
        await store.waitForWork(10_000, ac.signal);
        expect(Date.now() - t0).toBeLessThan(2_000);
      });

      it('refuses work beyond the pending limit without writing, and recovers', async () => {
        const limited = await factory({ maxPending: 3 });
        extra.push(limited);
        const s = limited.store;
        const c = await s.createConversation({ channel: 'api' });
        for (let i = 0; i < 3; i++) await s.accept(input(c.id, `m${i}`, { dedupeKey: `k${i}` }));
        const err = await rejection(s.accept(input(c.id, 'overflow', { dedupeKey: 'k3' })));
        expect(err).toBeInstanceOf(QueueFullError);
        expect((err as QueueFullError).code).toBe('GW_ERR_QUEUE_FULL');
        expect((err as QueueFullError).extra.retryAfter).toEqual(expect.any(Number));
        expect((await s.listMessages(c.id, { take: 10, order: 'asc' })).items).toHaveLength(3);
        expect(await s.pendingCount()).toBe(3);

        // A repeat is still recognised, and unqueued messages are not limited.
        expect((await s.accept(input(c.id, 'm0', { dedupeKey: 'k0' }))).duplicate).toBe(true);
        const note = await s.accept(input(c.id, 'note', { dedupeKey: 'n', skipQueue: true }));
        expect(note.message.seq).toBe(4);

        const cl = (await s.claim('w1', 1, 30_000))[0]!;
        expect(await s.complete(cl)).toEqual(DONE);
        const retried = await s.accept(input(c.id, 'overflow', { dedupeKey: 'k3' }));
        expect(retried).toMatchObject({ duplicate: false, message: { seq: 5, text: 'overflow' } });
        expect(await s.pendingCount()).toBe(3);
      });
    });

    describe('kv and bus', () => {
      it('gets, sets, deletes and expires keys', async () => {
        expect(await store.kv.get('a')).toBeNull();
        await store.kv.set('a', '1');
        expect(await store.kv.get('a')).toBe('1');
        expect(await store.kv.setIfAbsent('a', '2')).toBe(false);
        expect(await store.kv.get('a')).toBe('1');
        await store.kv.delete('a');
        expect(await store.kv.get('a')).toBeNull();
        expect(await store.kv.setIfAbsent('a', '3', 0.3)).toBe(true);
        await store.kv.set('b', 'x', 0.3);
        expect(await store.kv.get('a')).toBe('3');
        await sleep(500);
        expect(await store.kv.get('a')).toBeNull();
        expect(await store.kv.get('b')).toBeNull();
        expect(await store.kv.setIfAbsent('a', '4')).toBe(true);
        expect(await store.kv.get('a')).toBe('4');
      });

      it('fans published payloads out to subscribers of the topic', async () => {
        const got: string[] = [];
        const other: string[] = [];
        const unsubA = await store.bus.subscribe('t1', (p) => got.push(`a:${p}`));
        const unsubB = await store.bus.subscribe('t1', (p) => got.push(`b:${p}`));
        const unsubO = await store.bus.subscribe('t2', (p) => other.push(p));
        await store.bus.publish('t1', 'hello');
        await expect.poll(() => got.length, { timeout: 2_000 }).toBe(2);
        expect(got.sort()).toEqual(['a:hello', 'b:hello']);
        await unsubA();
        await store.bus.publish('t1', 'again');
        await expect.poll(() => got.length, { timeout: 2_000 }).toBe(3);
        expect(got[2]).toBe('b:again');
        await unsubB();
        await unsubO();
        await store.bus.publish('t1', 'nobody');
        await sleep(100);
        expect(got).toHaveLength(3);
        expect(other).toEqual([]);
      });
    });

    it('answers ping', async () => {
      expect(await store.ping()).toBe(true);
    });
  });
}
