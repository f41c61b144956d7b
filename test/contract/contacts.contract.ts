/**
 * @module The contacts repository's conformance suite (SPEC §9), run against the in-memory state
 * (`contacts-memory.test.ts`) and Redis (`contacts-redis.test.ts`).
 */
import { describe, expect, it } from 'vitest';
import type { Identity } from '../../src/contacts/model.js';
import { ContactRepo } from '../../src/contacts/repo.js';
import type { ContactState } from '../../src/contacts/state.js';
import { GatewayError } from '../../src/core/errors.js';

export type StateFactory = () => Promise<{ state: ContactState; cleanup: () => Promise<void> }>;

const sms = (n: string): Identity => ({ channel: 'sms', address: n, verified: true, source: 'twilio' });
const wa = (n: string): Identity => ({
  channel: 'whatsapp',
  address: n,
  verified: true,
  source: 'twilio_waid',
});
const mail = (a: string, verified: boolean): Identity => ({
  channel: 'email',
  address: a,
  verified,
  source: verified ? 'smtp_dkim' : 'none',
});
const visitor = (sub: string): Identity => ({
  channel: 'webchat',
  address: sub,
  verified: true,
  source: 'webchat_jwt',
});

export function contactsContract(name: string, factory: StateFactory): void {
  describe(`contacts repository (${name})`, () => {
    const withRepo = (fn: (repo: ContactRepo) => Promise<void>) => async () => {
      const { state, cleanup } = await factory();
      try {
        await fn(new ContactRepo(state));
      } finally {
        await cleanup();
      }
    };

    it(
      'gives a new sender a contact, and the same sender the same one',
      withRepo(async (repo) => {
        const a = await repo.identify(sms('+15550001111'), [], 'Ann');
        expect(a.created).toBe(true);
        expect(a.contact.id).toMatch(/^ct_/);
        expect(a.contact.name).toBe('Ann');
        const again = await repo.identify(sms('+15550001111'), []);
        expect(again).toMatchObject({ created: false, updated: false });
        expect(again.contact.id).toBe(a.contact.id);
        expect(await repo.get(a.contact.id)).toMatchObject({
          identities: [{ channel: 'sms', address: '+15550001111', verified: true, source: 'twilio' }],
        });
      }),
    );

    it(
      'links WhatsApp to SMS on the same verified number, recording the source',
      withRepo(async (repo) => {
        const a = await repo.identify(sms('+15550002222'), []);
        const b = await repo.identify(wa('+15550002222'), []);
        expect(b.created).toBe(false);
        expect(b.linkedBy).toMatchObject({ channel: 'whatsapp', source: 'twilio_waid' });
        expect(b.contact.id).toBe(a.contact.id);
        expect(b.contact.identities.map((i) => `${i.channel}:${i.source}`)).toEqual([
          'sms:twilio',
          'whatsapp:twilio_waid',
        ]);
      }),
    );

    it(
      'links a verified claim to the contact that proved it; an unverified one is only a suggestion',
      withRepo(async (repo) => {
        const owner = await repo.identify(mail('ann@example.com', true), []);
        const linked = await repo.identify(visitor('v-1'), [
          { ...mail('ann@example.com', true), source: 'webchat_jwt' },
        ]);
        expect(linked.contact.id).toBe(owner.contact.id);
        const loose = await repo.identify(visitor('v-2'), [mail('ann@example.com', false)]);
        expect(loose.created).toBe(true);
        expect(loose.contact.id).not.toBe(owner.contact.id);
        expect(loose.suggestions).toHaveLength(1);
        const suggestions = await repo.suggestions();
        expect(suggestions).toEqual([
          expect.objectContaining({
            contactIds: [owner.contact.id, loose.contact.id].sort(),
            reason: expect.stringContaining('not verified on both sides'),
          }),
        ]);
        // Mail that merely claims the address never lands on the contact that proved it.
        const forged = await repo.identify(mail('ann@example.com', false), []);
        expect(forged.contact.id).not.toBe(owner.contact.id);
      }),
    );

    it(
      "reads a conversation's contact in one step: its link's, else the fallback's, never a stale one",
      withRepo(async (repo) => {
        const a = (await repo.identify(sms('+15550009100'), [], 'Ann')).contact;
        const b = (await repo.identify(visitor('v-91'), [], 'Bo')).contact;
        await repo.attach('conv_L', visitor('v-91'));
        // The link wins over the fallback (a participant's contact id that a merge left behind).
        expect((await repo.contactOfConversation('conv_L', a.id))?.id).toBe(b.id);
        // No link: the fallback's contact; neither: none.
        expect((await repo.contactOfConversation('conv_none', a.id))?.name).toBe('Ann');
        expect(await repo.contactOfConversation('conv_none', null)).toBeNull();
        expect(await repo.contactOfConversation('conv_none', 'ct_missing')).toBeNull();
        // After a merge the link names the survivor, and the merged contact is gone.
        await repo.merge(a.id, b.id, 'test', null);
        expect((await repo.contactOfConversation('conv_L', b.id))?.id).toBe(a.id);
        expect((await repo.contactOfConversation('conv_L', null))?.identities).toHaveLength(2);
      }),
    );

    it(
      'merges identities and conversations, idempotently, and unmerges them back',
      withRepo(async (repo) => {
        const a = (await repo.identify(sms('+15550003333'), [], 'Ann')).contact;
        const b = (await repo.identify(visitor('v-3'), [], 'Annie')).contact;
        await repo.attach('conv_A', sms('+15550003333'));
        await repo.attach('conv_B', visitor('v-3'));
        expect(() => repo.merge(a.id, a.id, 'test', null)).toThrow(GatewayError);
        const m = await repo.merge(a.id, b.id, 'agent:1', 'same person');
        expect(m.changed).toBe(true);
        expect(m.conversationIds).toEqual(['conv_B']);
        expect(m.contact.identities.map((i) => i.channel)).toEqual(['sms', 'webchat']);
        expect(m.contact.history.at(-1)).toMatchObject({ op: 'merged', contactId: b.id, by: 'agent:1' });
        expect(await repo.get(b.id)).toBeNull();
        expect((await repo.conversationIds(a.id)).sort()).toEqual(['conv_A', 'conv_B']);
        expect((await repo.linkOf('conv_B'))?.contactId).toBe(a.id);
        // New messages from the merged identity land on the survivor.
        expect((await repo.identify(visitor('v-3'), [])).contact.id).toBe(a.id);
        const again = await repo.merge(a.id, b.id, 'agent:1', 'same person');
        expect(again.changed).toBe(false);

        const u = await repo.unmerge(a.id, { channel: 'webchat', address: 'v-3' }, 'agent:1', 'not her');
        expect(u.changed).toBe(true);
        expect(u.conversationIds).toEqual(['conv_B']);
        expect(u.contact.identities).toEqual([visitor('v-3')]);
        expect(await repo.conversationIds(u.contact.id)).toEqual(['conv_B']);
        expect(await repo.conversationIds(a.id)).toEqual(['conv_A']);
        expect((await repo.identify(visitor('v-3'), [])).contact.id).toBe(u.contact.id);
        const twice = await repo.unmerge(a.id, { channel: 'webchat', address: 'v-3' }, 'agent:1', null);
        expect(twice).toMatchObject({ changed: false });
        expect(twice.contact.id).toBe(u.contact.id);
        await expect(
          repo.unmerge(a.id, { channel: 'email', address: 'x@y.z' }, 'a', null),
        ).rejects.toMatchObject({
          code: 'GW_ERR_IDENTITY_NOT_FOUND',
        });
      }),
    );

    it(
      'a merge racing new conversations of the merged contact loses none of them',
      withRepo(async (repo) => {
        const a = (await repo.identify(sms('+15550004444'), [])).contact;
        const b = (await repo.identify(visitor('v-4'), [])).contact;
        const attaches = Array.from({ length: 20 }, (_, i) => repo.attach(`conv_${i}`, visitor('v-4')));
        const merge = repo.merge(a.id, b.id, 'test', null);
        const links = await Promise.all(attaches);
        await merge;
        expect(links.every((l) => l !== null)).toBe(true);
        expect((await repo.conversationIds(a.id)).length).toBe(20);
        for (let i = 0; i < 20; i++) expect((await repo.linkOf(`conv_${i}`))?.contactId).toBe(a.id);
      }),
    );

    it(
      'lists by identity, name or address substring and meta; patches name and meta',
      withRepo(async (repo) => {
        const a = (await repo.identify(sms('+15550005555'), [], 'Zed Zulu')).contact;
        await repo.identify(sms('+15550006666'), [], 'Yan');
        await repo.patch(a.id, { meta: { tier: 'gold' } });
        expect(
          (await repo.list({ take: 10, order: 'asc', identity: 'sms:+15550005555' })).items.map((c) => c.id),
        ).toEqual([a.id]);
        expect((await repo.list({ take: 10, order: 'asc', q: 'zulu' })).items.map((c) => c.id)).toEqual([
          a.id,
        ]);
        expect(
          (await repo.list({ take: 10, order: 'asc', meta: { tier: 'gold' } })).items.map((c) => c.id),
        ).toEqual([a.id]);
        const p1 = await repo.list({ take: 1, order: 'asc' });
        expect(p1.cursor).not.toBeNull();
        const p2 = await repo.list({ take: 1, order: 'asc', cursor: p1.cursor! });
        expect(p2.items[0]?.id).not.toBe(p1.items[0]?.id);
        expect(p2.cursor).toBeNull();
      }),
    );

    it(
      'removes a contact with every index entry of theirs',
      withRepo(async (repo) => {
        const a = (await repo.identify(sms('+15550007777'), [])).contact;
        await repo.attach('conv_X', sms('+15550007777'));
        expect(await repo.remove(a.id, [])).toEqual({ removed: false, pending: ['conv_X'] });
        expect(await repo.remove(a.id, ['conv_X'])).toEqual({ removed: true, pending: [] });
        expect(await repo.get(a.id)).toBeNull();
        expect(await repo.linkOf('conv_X')).toBeNull();
        expect(await repo.ownersOf('sms', '+15550007777')).toEqual([]);
        const fresh = await repo.identify(sms('+15550007777'), []);
        expect(fresh.created).toBe(true);
      }),
    );
    it(
      "keeps each contact's conversation (contact scope) through claims, merges, unmerges and removal",
      withRepo(async (repo) => {
        const a = (await repo.identify(sms('+15550008881'), [])).contact;
        const b = (await repo.identify(mail('lou@example.com', true), [])).contact;
        expect(await repo.openOf(a.id)).toBeNull();
        expect(await repo.claimOpen(a.id, 'conv_A')).toBe('conv_A');
        // Another claim finds the one there; a stale one (found deleted) is replaced.
        expect(await repo.claimOpen(a.id, 'conv_A2')).toBe('conv_A');
        expect(await repo.claimOpen(a.id, 'conv_A2', 'conv_gone')).toBe('conv_A');
        expect(await repo.claimOpen(a.id, 'conv_A2', 'conv_A')).toBe('conv_A2');
        expect(await repo.claimOpen(a.id, 'conv_A')).toBe('conv_A2');
        expect(await repo.claimOpen('ct_nobody', 'conv_Z')).toBeNull();
        await repo.attach('conv_A2', sms('+15550008881'));
        await repo.attach('conv_B', mail('lou@example.com', true));
        expect(await repo.claimOpen(b.id, 'conv_B')).toBe('conv_B');

        // The survivor keeps its own; the merged one's pointer goes with it.
        await repo.merge(a.id, b.id, 'agent:kim', null);
        expect(await repo.openOf(a.id)).toBe('conv_A2');
        expect(await repo.openOf(b.id)).toBeNull();
        expect(await repo.claimOpen(b.id, 'conv_late')).toBeNull();

        // An unmerge hands a conversation that leaves with the identity to the new contact.
        const c = (await repo.identify(wa('+15550008882'), [])).contact;
        await repo.attach('conv_C', wa('+15550008882'));
        await repo.claimOpen(c.id, 'conv_C');
        await repo.merge(a.id, c.id, 'agent:kim', null);
        expect(await repo.openOf(a.id)).toBe('conv_A2');
        const split = await repo.unmerge(
          a.id,
          { channel: 'sms', address: '+15550008881' },
          'agent:kim',
          null,
        );
        expect(await repo.openOf(split.contact.id)).toBe('conv_A2');
        expect(await repo.openOf(a.id)).toBeNull();

        // A contact without one takes the merged one's.
        const d = (await repo.identify(sms('+15550008883'), [])).contact;
        await repo.merge(d.id, split.contact.id, 'agent:kim', null);
        expect(await repo.openOf(d.id)).toBe('conv_A2');

        expect((await repo.remove(d.id, await repo.conversationIds(d.id))).removed).toBe(true);
        expect(await repo.openOf(d.id)).toBeNull();
      }),
    );

    it(
      'a claim racing a merge ends on the surviving contact',
      withRepo(async (repo) => {
        for (let round = 0; round < 5; round++) {
          const a = (await repo.identify(sms(`+1555000990${round}`), [])).contact;
          const b = (await repo.identify(visitor(`visitor-race-${round}`), [])).contact;
          const [, claimed] = await Promise.all([
            repo.merge(a.id, b.id, 'agent:kim', null),
            repo.claimOpen(b.id, `conv_race_${round}`),
          ]);
          // Either the claim came first and the merge carried it over, or it found b gone.
          if (claimed === null) expect(await repo.openOf(a.id)).toBeNull();
          else expect(await repo.openOf(a.id)).toBe(`conv_race_${round}`);
          expect(await repo.openOf(b.id)).toBeNull();
        }
      }),
    );
  });
}
