/**
 * The contacts API (SPEC §9) on the embedded backend: validation and problem+json errors, lists with
 * their filters and cursors, patch, timeline, merge/unmerge refusals, and erasure of the embedded
 * store's records and key/value entries.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Contact } from '../../src/contacts/model.js';
import type { Conversation, Message, Participant } from '../../src/core/model.js';
import { type ApiApp, startApiApp } from '../helpers/api-app.js';

let app: ApiApp;

beforeAll(async () => {
  app = await startApiApp();
});

afterAll(async () => {
  await app?.close();
});

async function json<T>(path: string, init?: RequestInit & { json?: unknown }): Promise<T> {
  const res = await app.api(path, init);
  expect(res.status, `${init?.method ?? 'GET'} ${path}`).toBeLessThan(300);
  return (await res.json()) as T;
}

async function problem(path: string, init: RequestInit & { json?: unknown }, status: number, code: string) {
  const res = await app.api(path, init);
  expect(res.status).toBe(status);
  expect(res.headers.get('content-type')).toContain('application/problem+json');
  expect(await res.json()).toMatchObject({ status, code });
}

/** A customer writing by SMS: their contact, and a conversation with one message attached to it. */
async function customer(
  phone: string,
  name: string,
  text: string,
): Promise<{ contactId: string; conv: Conversation }> {
  const { contacts, store } = app.deps;
  const from: Participant = { id: `sms:${phone}`, role: 'user', address: phone, name };
  const identity = { verified: true, source: 'twilio' };
  const withContact = await contacts.contactOf('sms', from, identity);
  const conv = await store.createConversation({
    channel: 'sms',
    channelRef: `+15550000000|${phone}`,
    participants: [withContact],
  });
  await contacts.attachContact(conv, 'sms', withContact, identity);
  await store.appendMessage(conv.id, { type: 'user', text, direction: 'inbound', name });
  return { contactId: withContact.contactId!, conv };
}

describe('contacts API', () => {
  it('lists with identity, q and meta filters and cursors; gets and patches', async () => {
    const a = await customer('+14155551001', 'Alma Able', 'hi from Alma');
    const b = await customer('+14155551002', 'Bo Baker', 'hi from Bo');
    expect(app.events.filter((e) => e.type === 'contact.created')).toHaveLength(2);
    const byIdentity = await json<{ items: Contact[] }>('/v1/contacts?identity=sms:%2B14155551001');
    expect(byIdentity.items.map((c) => c.id)).toEqual([a.contactId]);
    expect((await json<{ items: Contact[] }>('/v1/contacts?q=baker')).items.map((c) => c.id)).toEqual([
      b.contactId,
    ]);
    const patched = await json<Contact>(`/v1/contacts/${a.contactId}`, {
      method: 'PATCH',
      json: { meta: { tier: 'gold' }, name: 'Alma A.' },
    });
    expect(patched).toMatchObject({ name: 'Alma A.', meta: { tier: 'gold' } });
    expect(app.events.at(-1)).toMatchObject({ type: 'contact.updated' });
    expect(app.events.at(-1)?.changes?.sort()).toEqual(['meta', 'name']);
    // An empty patch is refused, as on every PATCH route, and announces nothing.
    const eventsBefore = app.events.length;
    const empty = await app.api(`/v1/contacts/${a.contactId}`, { method: 'PATCH', json: {} });
    expect(empty.status).toBe(400);
    expect(await empty.json()).toMatchObject({ code: 'GW_ERR_VALIDATION' });
    expect(app.events.length).toBe(eventsBefore);
    expect((await json<{ items: Contact[] }>('/v1/contacts?meta[tier]=gold')).items.map((c) => c.id)).toEqual(
      [a.contactId],
    );
    const first = await json<{ items: Contact[]; cursor: string | null }>('/v1/contacts?take=1');
    expect(first.cursor).not.toBeNull();
    const next = await json<{ items: Contact[]; cursor: string | null }>(
      `/v1/contacts?take=1&cursor=${first.cursor}`,
    );
    expect(next.items[0]?.id).not.toBe(first.items[0]?.id);
    const desc = await json<{ items: Contact[] }>('/v1/contacts?order=desc');
    expect(desc.items[0]?.id).toBe(b.contactId);
    expect((await json<Contact>(`/v1/contacts/${b.contactId}`)).identities).toEqual([
      { channel: 'sms', address: '+14155551002', verified: true, source: 'twilio' },
    ]);
  });

  it('refuses bad input with problem+json', async () => {
    await problem('/v1/contacts?take=0', {}, 400, 'GW_ERR_VALIDATION');
    await problem('/v1/contacts?colour=red', {}, 400, 'GW_ERR_VALIDATION');
    await problem('/v1/contacts?cursor=nope', {}, 400, 'GW_ERR_INVALID_CURSOR');
    await problem('/v1/contacts?identity=nochannel', {}, 400, 'GW_ERR_VALIDATION');
    await problem('/v1/contacts/ct_01ARZ3NDEKTSV4RRFFQ69G5FAV', {}, 404, 'GW_ERR_NOT_FOUND');
    await problem('/v1/contacts/garbage', {}, 404, 'GW_ERR_NOT_FOUND');
    await problem(
      '/v1/contacts/ct_01ARZ3NDEKTSV4RRFFQ69G5FAV',
      { method: 'PATCH', json: { nope: 1 } },
      400,
      'GW_ERR_VALIDATION',
    );
    const { contactId } = await customer('+14155551003', 'Cy', 'hi');
    await problem(
      `/v1/contacts/${contactId}/merge`,
      { method: 'POST', json: { from: contactId } },
      422,
      'GW_ERR_MERGE_SELF',
    );
    await problem(
      `/v1/contacts/${contactId}/merge`,
      { method: 'POST', json: { from: 'ct_01ARZ3NDEKTSV4RRFFQ69G5FAV' } },
      404,
      'GW_ERR_NOT_FOUND',
    );
    await problem(`/v1/contacts/${contactId}/merge`, { method: 'POST', json: {} }, 400, 'GW_ERR_VALIDATION');
    await problem(
      `/v1/contacts/${contactId}/unmerge`,
      { method: 'POST', json: { channel: 'email', address: 'no@example.com' } },
      404,
      'GW_ERR_IDENTITY_NOT_FOUND',
    );
    await problem(
      `/v1/contacts/${contactId}/unmerge`,
      { method: 'POST', json: { channel: 'sms', address: '+14155551003' } },
      422,
      'GW_ERR_UNMERGE_LAST_IDENTITY',
    );
    await problem(`/v1/contacts/${contactId}/timeline?cursor=xyz`, {}, 400, 'GW_ERR_INVALID_CURSOR');
  });

  it('pages a merged contact’s timeline in time order across conversations', async () => {
    const a = await customer('+14155551004', 'Di', 'one');
    const b = await customer('+14155551005', 'Di', 'two');
    await app.deps.store.appendMessage(a.conv.id, { type: 'user', text: 'three', direction: 'inbound' });
    await json(`/v1/contacts/${a.contactId}/merge`, { method: 'POST', json: { from: b.contactId } });
    const p1 = await json<{ items: Message[]; cursor: string | null }>(
      `/v1/contacts/${a.contactId}/timeline?take=2`,
    );
    const p2 = await json<{ items: Message[]; cursor: string | null }>(
      `/v1/contacts/${a.contactId}/timeline?take=2&cursor=${p1.cursor}`,
    );
    expect([...p1.items, ...p2.items].map((m) => m.text)).toEqual(['one', 'two', 'three']);
    expect(p2.cursor).toBeNull();
    const convs = await json<{ items: Conversation[] }>(`/v1/contacts/${a.contactId}/conversations`);
    expect(convs.items.map((c) => c.id)).toEqual([b.conv.id, a.conv.id]);
  });

  it('erases a contact with their conversations and the key/value entries about them', async () => {
    const e = await customer('+14155551006', 'Eve Erased', 'forget me');
    await app.deps.store.kv.set('email:thread:<x@y>', JSON.stringify({ ref: e.conv.channelRef, addr: 'e' }));
    await app.deps.store.kv.set('slack:profile:T:U', 'Eve Erased');
    await app.deps.store.kv.set('unrelated', 'keep me');
    expect(await json(`/v1/contacts/${e.contactId}`, { method: 'DELETE' })).toEqual({ id: e.contactId });
    expect(await app.deps.store.getConversation(e.conv.id)).toBeNull();
    expect(await app.deps.store.kv.get('email:thread:<x@y>')).toBeNull();
    expect(await app.deps.store.kv.get('slack:profile:T:U')).toBeNull();
    expect(await app.deps.store.kv.get('unrelated')).toBe('keep me');
    expect((await json<{ items: Contact[] }>('/v1/contacts?identity=sms:%2B14155551006')).items).toEqual([]);
    expect(app.events.at(-1)).toEqual(
      expect.objectContaining({
        type: 'contact.deleted',
        contact: { id: e.contactId },
        conversationIds: [e.conv.id],
      }),
    );
    await problem(`/v1/contacts/${e.contactId}`, { method: 'DELETE' }, 404, 'GW_ERR_NOT_FOUND');
  });
});

describe('conversations made through the API', () => {
  it('give their user participants contacts, unverified, that never link', async () => {
    const res = await app.api('/v1/conversations', {
      method: 'POST',
      json: { channel: 'sms', participants: [{ role: 'user', address: '+14155551001', name: 'Imported' }] },
    });
    expect(res.status).toBe(201);
    const conv = (await res.json()) as Conversation;
    const contactId = conv.participants[0]?.contactId;
    expect(contactId).toMatch(/^ct_/);
    const contact = await json<Contact>(`/v1/contacts/${contactId}`);
    expect(contact.identities).toEqual([
      { channel: 'sms', address: '+14155551001', verified: false, source: 'api' },
    ]);
    // The customer who wrote from that number by SMS is another contact, suggested, not merged.
    const owners = await json<{ items: Contact[] }>('/v1/contacts?identity=sms:%2B14155551001');
    expect(owners.items).toHaveLength(2);
    const suggestions = await json<{ items: Array<{ contactIds: string[] }> }>('/v1/contacts/suggestions');
    expect(suggestions.items.some((s) => s.contactIds.includes(contactId!))).toBe(true);
    expect(
      (await json<{ items: Conversation[] }>(`/v1/contacts/${contactId}/conversations`)).items.map(
        (c) => c.id,
      ),
    ).toEqual([conv.id]);
  });
});
