/** The message endpoints and the transcript export of `/v1` over real HTTP. */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Message } from '../../src/core/model.js';
import type { Page } from '../../src/core/store.js';
import { type ApiApp, startApiApp } from '../helpers/api-app.js';

let app: ApiApp;
let cid: string;

beforeEach(async () => {
  app = await startApiApp();
  const res = await app.api('/v1/conversations', { method: 'POST', json: {} });
  cid = ((await res.json()) as { id: string }).id;
});
afterEach(async () => {
  await app.close();
});

async function post(body: Record<string, unknown>): Promise<Message> {
  const res = await app.api(`/v1/conversations/${cid}/messages`, { method: 'POST', json: body });
  expect(res.status).toBe(201);
  return (await res.json()) as Message;
}

async function page(query: string): Promise<Page<Message>> {
  const res = await app.api(`/v1/conversations/${cid}/messages?${query}`);
  expect(res.status).toBe(200);
  return (await res.json()) as Page<Message>;
}

const seqs = (p: Page<Message>) => p.items.map((m) => m.seq);

describe('POST /v1/conversations/:id/messages', () => {
  it('stores a message with the next seq, its direction and detected entities', async () => {
    const res = await app.api(`/v1/conversations/${cid}/messages`, {
      method: 'POST',
      json: { type: 'user', text: 'mail me: ann@example.com', name: 'Ann', meta: { source: 'import' } },
    });
    expect(res.status).toBe(201);
    const message = (await res.json()) as Message;
    expect(res.headers.get('location')).toBe(`/v1/conversations/${cid}/messages/${message.id}`);
    expect(message).toMatchObject({
      conversationId: cid,
      seq: 1,
      type: 'user',
      direction: 'inbound',
      name: 'Ann',
      meta: { source: 'import' },
      entities: [{ type: 'email', start: 9, end: 24 }],
    });
    expect(message.id).toMatch(/^msg_/);
    expect(message.delivery).toBeUndefined();
    expect(message.processing).toBeUndefined();

    const directions = [];
    for (const type of ['bot', 'context', 'activity'])
      directions.push((await post({ type, text: type })).direction);
    expect(directions).toEqual(['outbound', 'internal', 'internal']);
    expect(app.events.filter((e) => e.type === 'message.created').map((e) => e.seq)).toEqual([1, 2, 3, 4]);
    expect(await app.store.pendingCount()).toBe(0);
  });
});

describe('GET /v1/conversations/:id/messages', () => {
  it('pages forwards while new messages arrive, reaching them on later pages', async () => {
    for (let i = 1; i <= 3; i++) await post({ type: 'user', text: `m${i}` });
    const first = await page('take=2');
    expect(seqs(first)).toEqual([1, 2]);
    for (let i = 4; i <= 5; i++) await post({ type: 'bot', text: `m${i}` });
    const second = await page(`take=2&cursor=${first.cursor}`);
    expect(seqs(second)).toEqual([3, 4]);
    await post({ type: 'user', text: 'm6' });
    const third = await page(`take=2&cursor=${second.cursor}`);
    expect(seqs(third)).toEqual([5, 6]);
    expect(third.cursor).toBeNull();
  });

  it('pages backwards while new messages arrive, without repeats or gaps', async () => {
    for (let i = 1; i <= 5; i++) await post({ type: 'user', text: `m${i}` });
    const first = await page('take=2&order=desc');
    expect(seqs(first)).toEqual([5, 4]);
    for (let i = 6; i <= 7; i++) await post({ type: 'user', text: `m${i}` });
    const second = await page(`take=2&order=desc&cursor=${first.cursor}`);
    expect(seqs(second)).toEqual([3, 2]);
    const third = await page(`take=2&order=desc&cursor=${second.cursor}`);
    expect(seqs(third)).toEqual([1]);
    expect(third.cursor).toBeNull();
    expect(seqs(await page('order=desc&take=2'))).toEqual([7, 6]);
  });

  it('filters by type and meta', async () => {
    await post({ type: 'user', text: 'a', meta: { lang: 'en' } });
    await post({ type: 'bot', text: 'b', meta: { lang: 'en' } });
    await post({ type: 'user', text: 'c', meta: { lang: 'de' } });
    expect(seqs(await page('type=user'))).toEqual([1, 3]);
    expect(seqs(await page('meta[lang]=en'))).toEqual([1, 2]);
    expect(seqs(await page('meta[lang]=en&type=bot'))).toEqual([2]);
    const filtered = await page('meta[lang]=en&take=1');
    expect(seqs(filtered)).toEqual([1]);
    expect(seqs(await page(`meta[lang]=en&take=1&cursor=${filtered.cursor}`))).toEqual([2]);
  });
});

describe('PATCH /v1/conversations/:id/messages/:mid', () => {
  it('merges meta, changes text, recomputes entities and moves updatedAt', async () => {
    const original = await post({ type: 'user', text: 'plain', meta: { a: 1, b: 2 }, description: 'first' });
    await new Promise((r) => setTimeout(r, 5));
    const res = await app.api(`/v1/conversations/${cid}/messages/${original.id}`, {
      method: 'PATCH',
      json: { text: 'call +44 20 7946 0958', meta: { b: null, c: 3 }, name: 'Ann' },
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ id: original.id, entities: [{ type: 'phone', start: 5, end: 21 }] });

    const stored = (await (
      await app.api(`/v1/conversations/${cid}/messages/${original.id}`)
    ).json()) as Message;
    expect(stored).toMatchObject({
      seq: original.seq,
      text: 'call +44 20 7946 0958',
      name: 'Ann',
      description: 'first',
      meta: { a: 1, c: 3 },
      createdAt: original.createdAt,
    });
    expect(stored.updatedAt > original.updatedAt).toBe(true);

    const metaOnly = await app.api(`/v1/conversations/${cid}/messages/${original.id}`, {
      method: 'PATCH',
      json: { meta: { d: 4 } },
    });
    expect(await metaOnly.json()).toEqual({ id: original.id, entities: stored.entities });
    expect(app.events.filter((e) => e.type === 'message.updated')).toEqual([
      expect.objectContaining({ seq: 1, changes: ['text', 'name', 'meta', 'entities'] }),
      expect.objectContaining({ seq: 1, changes: ['meta'] }),
    ]);
  });
});

describe('DELETE /v1/conversations/:id/messages/:mid', () => {
  it('removes the message for good; the others keep their seq and seqs are not reused', async () => {
    const messages = [];
    for (let i = 1; i <= 3; i++) messages.push(await post({ type: 'user', text: `m${i}` }));
    const res = await app.api(`/v1/conversations/${cid}/messages/${messages[1]!.id}`, { method: 'DELETE' });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ id: messages[1]!.id });
    expect((await app.api(`/v1/conversations/${cid}/messages/${messages[1]!.id}`)).status).toBe(404);
    expect(seqs(await page(''))).toEqual([1, 3]);
    expect((await post({ type: 'user', text: 'm4' })).seq).toBe(4);
    expect(app.events.filter((e) => e.type === 'message.deleted')).toEqual([
      expect.objectContaining({ seq: 2, conversationId: cid }),
    ]);
  });
});

describe('GET /v1/conversations/:id/export', () => {
  it('streams JSON Lines in seq order across store pages', async () => {
    const total = 450;
    for (let i = 1; i <= total; i++) {
      await app.store.appendMessage(cid, { type: 'user', text: `line ${i}`, direction: 'inbound' });
    }
    const res = await app.api(`/v1/conversations/${cid}/export`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/jsonl; charset=utf-8');
    expect(res.headers.get('content-disposition')).toBe(`attachment; filename="${cid}.jsonl"`);
    const lines = (await res.text()).split('\n');
    expect(lines.pop()).toBe('');
    const messages = lines.map((l) => JSON.parse(l) as Message);
    expect(messages.map((m) => m.seq)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
    expect(messages[449]).toMatchObject({ text: 'line 450', conversationId: cid });
  });

  it('renders a plain-text transcript with continuation lines indented', async () => {
    const a = await post({ type: 'user', text: 'hello\nsecond line', name: 'Ann' });
    const b = await post({ type: 'bot', text: 'hi Ann' });
    const res = await app.api(`/v1/conversations/${cid}/export?format=text`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    expect(res.headers.get('content-disposition')).toBe(`attachment; filename="${cid}.txt"`);
    expect(await res.text()).toBe(
      `[${a.createdAt}] user Ann: hello\n  second line\n[${b.createdAt}] bot: hi Ann\n`,
    );
  });

  it('exports an empty conversation as an empty file', async () => {
    const res = await app.api(`/v1/conversations/${cid}/export?format=jsonl`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('');
  });
});
