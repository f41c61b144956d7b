/** The conversation endpoints of `/v1` over real HTTP: create, read, list with filters and pages, patch, delete. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Conversation } from '../../src/core/model.js';
import type { Page } from '../../src/core/store.js';
import { type ApiApp, startApiApp } from '../helpers/api-app.js';

let app: ApiApp;

beforeEach(async () => {
  app = await startApiApp();
});
afterEach(async () => {
  await app.close();
});

async function create(body: Record<string, unknown> = {}): Promise<Conversation> {
  const res = await app.api('/v1/conversations', { method: 'POST', json: body });
  expect(res.status).toBe(201);
  return (await res.json()) as Conversation;
}

async function list(query: string): Promise<Page<Conversation>> {
  const res = await app.api(`/v1/conversations?${query}`);
  expect(res.status).toBe(200);
  return (await res.json()) as Page<Conversation>;
}

/** Follows cursors until the last page; returns the ids page by page. */
async function allPages(query: string): Promise<string[][]> {
  const pages: string[][] = [];
  let cursor: string | null = null;
  do {
    const page = await list(`${query}${cursor ? `&cursor=${cursor}` : ''}`);
    pages.push(page.items.map((c) => c.id));
    cursor = page.cursor;
  } while (cursor !== null);
  return pages;
}

describe('POST /v1/conversations', () => {
  it('creates an api conversation with defaults and emits conversation.created and session.started', async () => {
    const res = await app.api('/v1/conversations', { method: 'POST', json: {} });
    expect(res.status).toBe(201);
    const conversation = (await res.json()) as Conversation;
    expect(res.headers.get('location')).toBe(`/v1/conversations/${conversation.id}`);
    expect(conversation).toMatchObject({
      channel: 'api',
      status: 'open',
      participants: [],
      meta: {},
      lastMessageAt: null,
    });
    expect(conversation.id).toMatch(/^conv_/);
    expect(app.events).toEqual([
      expect.objectContaining({ type: 'conversation.created', conversationId: conversation.id, seq: 0 }),
      expect.objectContaining({
        type: 'session.started',
        conversationId: conversation.id,
        seq: 0,
        sessionId: conversation.sessionId,
      }),
    ]);
  });

  it('keeps participants (generating missing ids), meta and an explicit channel', async () => {
    const conversation = await create({
      channel: 'email',
      participants: [
        { role: 'user', address: 'ann@example.com', name: 'Ann' },
        { id: 'agent-7', role: 'agent' },
      ],
      meta: { crm: { id: 42 }, tier: 'gold' },
    });
    expect(conversation.channel).toBe('email');
    expect(conversation.participants).toEqual([
      {
        id: expect.stringMatching(/^part_/),
        role: 'user',
        address: 'ann@example.com',
        name: 'Ann',
        contactId: expect.stringMatching(/^ct_/),
      },
      { id: 'agent-7', role: 'agent' },
    ]);
    expect(conversation.meta).toEqual({ crm: { id: 42 }, tier: 'gold' });
    const fetched = await app.api(`/v1/conversations/${conversation.id}`);
    expect(await fetched.json()).toEqual(conversation);
  });
});

describe('GET /v1/conversations', () => {
  it('pages in both directions with take and cursors, cursor null on the last page', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await create()).id);
    expect(await allPages('take=2')).toEqual([ids.slice(0, 2), ids.slice(2, 4), ids.slice(4)]);
    const reversed = [...ids].reverse();
    expect(await allPages('take=2&order=desc')).toEqual([
      reversed.slice(0, 2),
      reversed.slice(2, 4),
      reversed.slice(4),
    ]);
    const all = await list('');
    expect(all.items.map((c) => c.id)).toEqual(ids);
    expect(all.cursor).toBeNull();
  });

  it('keeps a cursor valid while conversations are added', async () => {
    const first = [(await create()).id, (await create()).id, (await create()).id];
    const page1 = await list('take=2');
    expect(page1.items.map((c) => c.id)).toEqual(first.slice(0, 2));
    const later = (await create()).id;
    const page2 = await list(`take=2&cursor=${page1.cursor}`);
    expect(page2.items.map((c) => c.id)).toEqual([first[2], later]);
  });

  it('filters by channel, status and meta (all must match, values compared as strings)', async () => {
    const a = await create({ channel: 'sms', meta: { tier: 'gold', region: 'eu', seats: 5 } });
    const b = await create({ channel: 'api', meta: { tier: 'gold', region: 'us' } });
    const c = await create({ channel: 'sms', meta: { tier: 'silver' } });
    await app.api(`/v1/conversations/${c.id}`, { method: 'PATCH', json: { status: 'closed' } });

    const ids = async (query: string) => (await list(query)).items.map((x) => x.id);
    expect(await ids('channel=sms')).toEqual([a.id, c.id]);
    expect(await ids('status=closed')).toEqual([c.id]);
    expect(await ids('status=open&channel=sms')).toEqual([a.id]);
    expect(await ids('meta[tier]=gold')).toEqual([a.id, b.id]);
    expect(await ids('meta[tier]=gold&meta[region]=us')).toEqual([b.id]);
    expect(await ids('meta[seats]=5')).toEqual([a.id]);
    expect(await ids(`meta[tier]=${encodeURIComponent('gold ')}`)).toEqual([]);
    expect(await ids('meta[missing]=x')).toEqual([]);
    expect(await allPages('meta[tier]=gold&take=1')).toEqual([[a.id], [b.id]]);
  });
});

describe('PATCH /v1/conversations/:id', () => {
  it('changes status and merges meta: set, overwrite, remove with null, keep the rest', async () => {
    const conversation = await create({ meta: { a: 1, b: 2, nested: { x: 1 } } });
    await new Promise((r) => setTimeout(r, 5));
    const res = await app.api(`/v1/conversations/${conversation.id}`, {
      method: 'PATCH',
      json: { status: 'handoff', meta: { b: 3, c: 'new', a: null, nested: { y: 2 } } },
    });
    expect(res.status).toBe(200);
    const patched = (await res.json()) as Conversation;
    expect(patched.status).toBe('handoff');
    expect(patched.meta).toEqual({ b: 3, c: 'new', nested: { y: 2 } });
    expect(patched.updatedAt > conversation.updatedAt).toBe(true);
    expect(patched.createdAt).toBe(conversation.createdAt);
    expect(await (await app.api(`/v1/conversations/${conversation.id}`)).json()).toEqual(patched);

    const metaOnly = await app.api(`/v1/conversations/${conversation.id}`, {
      method: 'PATCH',
      json: { meta: { d: true } },
    });
    expect(((await metaOnly.json()) as Conversation).status).toBe('handoff');

    expect(app.events.filter((e) => e.type === 'conversation.updated')).toEqual([
      expect.objectContaining({ seq: 0, changes: ['status', 'meta'] }),
      expect.objectContaining({ seq: 0, changes: ['meta'] }),
    ]);
  });
});

describe('DELETE /v1/conversations/:id', () => {
  it('erases the conversation and its messages, once', async () => {
    const keep = await create();
    const gone = await create();
    for (const text of ['one', 'two']) {
      await app.api(`/v1/conversations/${gone.id}/messages`, {
        method: 'POST',
        json: { type: 'user', text },
      });
    }
    const res = await app.api(`/v1/conversations/${gone.id}`, { method: 'DELETE' });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ id: gone.id });
    expect((await app.api(`/v1/conversations/${gone.id}`)).status).toBe(404);
    expect((await app.api(`/v1/conversations/${gone.id}/messages`)).status).toBe(404);
    expect(await app.store.listMessages(gone.id, { take: 10, order: 'asc' })).toEqual({
      items: [],
      cursor: null,
    });
    expect((await list('')).items.map((c) => c.id)).toEqual([keep.id]);
    expect((await app.api(`/v1/conversations/${gone.id}`, { method: 'DELETE' })).status).toBe(404);
    expect(app.events.filter((e) => e.type === 'conversation.deleted')).toEqual([
      expect.objectContaining({ conversationId: gone.id, seq: 2 }),
    ]);
  });
});
