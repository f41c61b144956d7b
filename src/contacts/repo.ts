/**
 * @module The contacts repository: every contact operation, planned once over a {@link ContactState}
 * and applied as one checked write (all or nothing). When a check fails another operation came in
 * between (a message from the same person, a merge): the operation reads again and plans anew, so a
 * merge racing a new message either sees the message's conversation and moves it, or the message sees
 * the merge and attaches to the surviving contact.
 */
import { GatewayError } from '../core/errors.js';
import { newId } from '../core/ids.js';
import type { Meta } from '../core/model.js';
import type { Page } from '../core/store.js';
import type { Contact, ContactChange, Identity, MergeSuggestion } from './model.js';
import { identityKey } from './model.js';
import { indexKeyOf, linkKeyOf } from './rules.js';
import type { Check, ContactState, Op } from './state.js';

/** Plans retried before an operation on a hot contact is reported as a conflict. */
const ATTEMPTS = 16;
/** Contacts read per round trip while a filtered list skips non-matching ones. */
const SCAN_BATCH = 100;

/** Which contact a conversation belongs to, and through which of its identities it came. */
export interface ConversationLink {
  contactId: string;
  /** The index key of the identity the conversation came with. */
  identity: string;
  /** When it was attached (ms); also its score in the contact's conversation set. */
  at: number;
}

export interface IdentifyResult {
  contact: Contact;
  created: boolean;
  /** The identity through which the sender was linked to an existing contact, if that happened now. */
  linkedBy: Identity | null;
  /** True when the contact changed (new identity, first name) without being created. */
  updated: boolean;
  suggestions: MergeSuggestion[];
}

export interface MergeResult {
  contact: Contact;
  /** False when the merge had been done before (idempotent repeat). */
  changed: boolean;
  /** The contact merged in, as it was. */
  from: Contact | null;
  conversationIds: string[];
}

export interface UnmergeResult {
  /** The contact now holding the identity. */
  contact: Contact;
  /** The contact it left. */
  source: Contact;
  changed: boolean;
  conversationIds: string[];
}

export interface ContactQuery {
  cursor?: string;
  take: number;
  order: 'asc' | 'desc';
  meta?: Record<string, string>;
  /** `<channel>:<address>` */
  identity?: string;
  /** Substring of the name or of an address, case-insensitive. */
  q?: string;
}

export interface ContactPatch {
  name?: string | null;
  /** Merged into the existing meta (shallow); a key set to `null` is removed. */
  meta?: Meta;
}

type Plan<T> = { done: T } | { checks: Check[]; ops: Op[]; result: T };

function conflict(): GatewayError {
  return new GatewayError('GW_ERR_CONFLICT', 'The contact kept changing while being updated; retry');
}

function pairKey(a: string, b: string): string {
  return a < b ? `${a} ${b}` : `${b} ${a}`;
}

function parseList(raw: string | null): string[] {
  return raw ? (JSON.parse(raw) as string[]) : [];
}

export class ContactRepo {
  readonly state: ContactState;
  readonly #now: () => number;

  constructor(state: ContactState, now: () => number = Date.now) {
    this.state = state;
    this.#now = now;
  }

  async #txn<T>(plan: () => Promise<Plan<T>>): Promise<T> {
    for (let i = 0; i < ATTEMPTS; i++) {
      const p = await plan();
      if ('done' in p) return p.done;
      if (await this.state.apply(p.checks, p.ops)) return p.result;
    }
    throw conflict();
  }

  async #docs(ids: readonly string[]): Promise<Map<string, { raw: string; contact: Contact }>> {
    const raws = await this.state.hget('c', ids);
    const out = new Map<string, { raw: string; contact: Contact }>();
    for (const [i, raw] of raws.entries())
      if (raw !== null) out.set(ids[i]!, { raw, contact: JSON.parse(raw) as Contact });
    return out;
  }

  async get(id: string): Promise<Contact | null> {
    return (await this.#docs([id])).get(id)?.contact ?? null;
  }

  /**
   * The contacts holding an identity (`<channel>:<address>`), verified or not: the verified owner,
   * and the contacts holding it unverified (found through the identifier's loose list).
   */
  async ownersOf(channel: string, address: string): Promise<string[]> {
    const key = `${channel}:${address}`;
    const link = linkKeyOf({ channel: channel as Identity['channel'], address });
    const [[owner], [loose]] = await Promise.all([
      this.state.hget('id', [key]),
      link ? this.state.hget('loose', [link]) : Promise.resolve([null]),
    ]);
    const ids = new Set<string>(owner ? [owner] : []);
    const holders = parseList(loose ?? null);
    const docs = await this.#docs(holders);
    for (const [id, d] of docs) if (d.contact.identities.some((i) => identityKey(i) === key)) ids.add(id);
    return [...ids];
  }

  /**
   * The contact of a conversation, in one read: the one its link names, or `fallbackId`'s when it has
   * no link (a conversation from before contacts, or from the API with a contact id).
   */
  async contactOfConversation(conversationId: string, fallbackId: string | null): Promise<Contact | null> {
    const [, raw] = await this.state.linkAndContact(conversationId, fallbackId);
    return raw ? (JSON.parse(raw) as Contact) : null;
  }

  async linkOf(conversationId: string): Promise<ConversationLink | null> {
    const [raw] = await this.state.hget('conv', [conversationId]);
    return raw ? (JSON.parse(raw) as ConversationLink) : null;
  }

  /**
   * Finds or creates the contact of a sender. `primary` is the identity the message came from,
   * `also` the further identities it carries (claims, profile email). A new sender is linked to an
   * existing contact only through a verified identifier that contact holds verified; every other match
   * becomes a suggestion. Identities new to the contact are added to it.
   */
  identify(primary: Identity, also: readonly Identity[], name?: string): Promise<IdentifyResult> {
    return this.#txn<IdentifyResult>(async () => {
      const all = [primary, ...also.filter((i) => indexKeyOf(i) !== indexKeyOf(primary))];
      const keys = all.map(indexKeyOf);
      const links = all.map(linkKeyOf);
      const linkKeys = [...new Set(links.filter((l): l is string => l !== null))];
      const [owners, linked, loose] = await Promise.all([
        this.state.hget('id', keys),
        this.state.hget('link', linkKeys),
        this.state.hget('loose', linkKeys),
      ]);
      const linkOf = new Map(linkKeys.map((l, i) => [l, linked[i] ?? null]));
      const looseOf = new Map(linkKeys.map((l, i) => [l, loose[i] ?? null]));
      const checks: Check[] = [['h', 'id', keys[0]!, owners[0] ?? false]];
      const ops: Op[] = [];
      const now = new Date(this.#now()).toISOString();

      let target: Contact | null = null;
      let targetRaw: string | null = null;
      let linkedBy: Identity | null = null;
      const ownerId = owners[0] ?? null;
      const candidate =
        ownerId ??
        (() => {
          for (const [i, identity] of all.entries()) {
            const l = links[i];
            if (identity.verified && l && linkOf.get(l)) {
              linkedBy = identity;
              return linkOf.get(l)!;
            }
          }
          return null;
        })();
      if (candidate) {
        const doc = (await this.#docs([candidate])).get(candidate);
        if (doc) {
          target = doc.contact;
          targetRaw = doc.raw;
        } else {
          // An index entry whose contact is gone (erased meanwhile): read again.
          linkedBy = null;
        }
      }
      if (candidate && !target) return this.#retryPlan<IdentifyResult>();
      if (ownerId === null && linkedBy) {
        const l = linkKeyOf(linkedBy)!;
        checks.push(['h', 'link', l, linkOf.get(l)!]);
      }
      const created = target === null;
      const contact: Contact = target
        ? structuredClone(target)
        : {
            id: newId('ct'),
            name: name ?? null,
            identities: [],
            meta: {},
            history: [],
            createdAt: now,
            updatedAt: now,
          };
      if (targetRaw !== null) checks.push(['h', 'c', contact.id, targetRaw]);
      let changed = false;
      if (!created && !contact.name && name) {
        contact.name = name;
        changed = true;
      }
      const suggestions = new Map<string, MergeSuggestion>();
      const suggest = (other: string, reason: string) => {
        if (other === contact.id) return;
        const k = pairKey(contact.id, other);
        if (!suggestions.has(k))
          suggestions.set(k, {
            contactIds: [contact.id, other].sort() as [string, string],
            reason,
            at: now,
          });
      };
      for (const [i, identity] of all.entries()) {
        const key = keys[i]!;
        const owner = owners[i] ?? null;
        const l = links[i] ?? null;
        if (owner === contact.id) continue;
        if (owner !== null) {
          if (i > 0) checks.push(['h', 'id', key, owner]);
          suggest(
            owner,
            `${l ?? identityKey(identity)} ${identity.verified ? 'verified on both sides, both contacts already exist' : 'not verified on both sides'}`,
          );
          continue;
        }
        if (i > 0) checks.push(['h', 'id', key, false]);
        ops.push(['hset', 'id', key, contact.id]);
        contact.identities.push({ ...identity });
        changed = true;
        if (!l) continue;
        const holder = linkOf.get(l) ?? null;
        const holders = parseList(looseOf.get(l) ?? null);
        if (identity.verified) {
          if (holder === null) {
            checks.push(['h', 'link', l, false]);
            ops.push(['hset', 'link', l, contact.id]);
            linkOf.set(l, contact.id);
          } else if (holder !== contact.id) {
            suggest(holder, `${l} verified on both sides, both contacts already exist`);
          }
          for (const h of holders) suggest(h, `${l} not verified on both sides`);
        } else {
          if (holder !== null) suggest(holder, `${l} not verified on both sides`);
          for (const h of holders) suggest(h, `${l} not verified on both sides`);
          if (!holders.includes(contact.id)) {
            checks.push(['h', 'loose', l, looseOf.get(l) ?? false]);
            const next = JSON.stringify([...holders, contact.id]);
            ops.push(['hset', 'loose', l, next]);
            looseOf.set(l, next);
          }
        }
      }
      const result: IdentifyResult = {
        contact,
        created,
        linkedBy: created ? null : linkedBy,
        updated: !created && changed,
        suggestions: [...suggestions.values()],
      };
      if (!created && !changed && suggestions.size === 0) return { done: result };
      if (created || changed) {
        contact.updatedAt = now;
        ops.push(['hset', 'c', contact.id, JSON.stringify(contact)]);
      }
      if (created) ops.push(['zadd', 'idx', 0, contact.id]);
      if (suggestions.size > 0) {
        const existing = await this.state.hget('sug', [...suggestions.keys()]);
        let i = 0;
        for (const [k, s] of suggestions) {
          if (existing[i++] === null) ops.push(['hset', 'sug', k, JSON.stringify(s)]);
        }
      }
      return { checks, ops, result };
    });
  }

  /** A plan that applies nothing and fails its check, so {@link #txn} reads again. */
  async #retryPlan<T>(): Promise<Plan<T>> {
    return { checks: [['n', 'never', -1]], ops: [], result: undefined as unknown as T };
  }

  /**
   * Attaches a conversation to the contact that holds `identity` now; idempotent (a conversation,
   * once attached, stays where it is until a merge or unmerge moves it). Null when no contact holds it.
   */
  attach(conversationId: string, identity: Identity): Promise<ConversationLink | null> {
    return this.#txn<ConversationLink | null>(async () => {
      const key = indexKeyOf(identity);
      const [[existing], [owner]] = await Promise.all([
        this.state.hget('conv', [conversationId]),
        this.state.hget('id', [key]),
      ]);
      if (existing) return { done: JSON.parse(existing) as ConversationLink };
      if (!owner) return { done: null };
      const link: ConversationLink = { contactId: owner, identity: key, at: this.#now() };
      return {
        checks: [
          ['h', 'conv', conversationId, false],
          ['h', 'id', key, owner],
        ],
        ops: [
          ['hset', 'conv', conversationId, JSON.stringify(link)],
          ['zadd', `cc:${owner}`, link.at, conversationId],
        ],
        result: link,
      };
    });
  }

  /**
   * Detaches an erased conversation from its contact (the conversation link and the contact's list),
   * so no index names it any more; idempotent. The contact's id, or null when it had none.
   */
  detach(conversationId: string): Promise<string | null> {
    return this.#txn<string | null>(async () => {
      const [raw] = await this.state.hget('conv', [conversationId]);
      if (!raw) return { done: null };
      const link = JSON.parse(raw) as ConversationLink;
      // In contact scope the contact's conversation pointer goes with it (SPEC §9).
      const [open] = await this.state.hget('open', [link.contactId]);
      const ops: Op[] = [
        ['hdel', 'conv', conversationId],
        ['zrem', `cc:${link.contactId}`, conversationId],
      ];
      const checks: Check[] = [['h', 'conv', conversationId, raw]];
      if (open === conversationId) {
        checks.push(['h', 'open', link.contactId, conversationId]);
        ops.push(['hdel', 'open', link.contactId]);
      }
      return {
        checks,
        ops,
        result: link.contactId,
      };
    });
  }

  /** Contact scope (SPEC §9): the contact's conversation, the one new channel threads of theirs join. */
  async openOf(contactId: string): Promise<string | null> {
    const [id] = await this.state.hget('open', [contactId]);
    return id ?? null;
  }

  /**
   * Makes `conversationId` the contact's conversation unless they have one other than `stale` (a
   * conversation found gone). Answers the contact's conversation afterwards, or null when the contact
   * is gone (merged into another meanwhile: the caller looks the sender up again).
   */
  claimOpen(contactId: string, conversationId: string, stale: string | null = null): Promise<string | null> {
    return this.#txn<string | null>(async () => {
      const [[raw], [current]] = await Promise.all([
        this.state.hget('c', [contactId]),
        this.state.hget('open', [contactId]),
      ]);
      if (!raw) return { done: null };
      if (current && current !== stale) return { done: current };
      return {
        checks: [
          ['h', 'c', contactId, raw],
          ['h', 'open', contactId, current ?? false],
        ],
        ops: [['hset', 'open', contactId, conversationId]],
        result: conversationId,
      };
    });
  }

  /** A contact's conversation ids, newest first. */
  conversationIds(contactId: string): Promise<string[]> {
    return this.state.zrange(`cc:${contactId}`, 0, -1, true);
  }

  async list(query: ContactQuery): Promise<Page<Contact>> {
    const rev = query.order === 'desc';
    if (query.identity !== undefined) {
      const at = query.identity.indexOf(':');
      const ids =
        at > 0 ? await this.ownersOf(query.identity.slice(0, at), query.identity.slice(at + 1)) : [];
      const docs = await this.#docs(ids);
      let items = [...docs.values()].map((d) => d.contact).filter((c) => matches(c, query));
      items.sort((a, b) => (a.id < b.id ? -1 : 1));
      if (rev) items.reverse();
      if (query.cursor) items = items.filter((c) => (rev ? c.id < query.cursor! : c.id > query.cursor!));
      return { items: items.slice(0, query.take), cursor: null };
    }
    const items: Contact[] = [];
    let after = query.cursor ?? null;
    for (;;) {
      const ids = await this.state.zrangeAfter('idx', after, SCAN_BATCH, rev);
      if (ids.length === 0) return { items, cursor: null };
      const docs = await this.#docs(ids);
      for (const id of ids) {
        after = id;
        const c = docs.get(id)?.contact;
        if (c && matches(c, query)) {
          items.push(c);
          if (items.length === query.take) {
            const more = await this.state.zrangeAfter('idx', id, 1, rev);
            return { items, cursor: more.length > 0 ? id : null };
          }
        }
      }
    }
  }

  patch(id: string, patch: ContactPatch): Promise<Contact | null> {
    return this.#txn<Contact | null>(async () => {
      const doc = (await this.#docs([id])).get(id);
      if (!doc) return { done: null };
      const c = structuredClone(doc.contact);
      if (patch.name !== undefined) c.name = patch.name;
      if (patch.meta) {
        for (const [k, v] of Object.entries(patch.meta)) {
          if (v === null) delete c.meta[k];
          else c.meta[k] = v;
        }
      }
      c.updatedAt = new Date(this.#now()).toISOString();
      return { checks: [['h', 'c', id, doc.raw]], ops: [['hset', 'c', id, JSON.stringify(c)]], result: c };
    });
  }

  /**
   * Moves every identity and conversation of `fromId` into `intoId` and removes `fromId`; recorded on
   * the surviving contact. Repeating a merge that was done answers the survivor, unchanged.
   */
  merge(intoId: string, fromId: string, by: string, reason: string | null): Promise<MergeResult> {
    if (intoId === fromId)
      throw new GatewayError('GW_ERR_MERGE_SELF', 'A contact cannot be merged into itself', {
        field: 'from',
      });
    return this.#txn<MergeResult>(async () => {
      const docs = await this.#docs([intoId, fromId]);
      const into = docs.get(intoId);
      if (!into) throw new GatewayError('GW_ERR_NOT_FOUND', `Contact ${intoId} not found`);
      const from = docs.get(fromId);
      if (!from) {
        const done = into.contact.history.some((h) => h.op === 'merged' && h.contactId === fromId);
        if (done) return { done: { contact: into.contact, changed: false, from: null, conversationIds: [] } };
        throw new GatewayError('GW_ERR_NOT_FOUND', `Contact ${fromId} not found`, { field: 'from' });
      }
      const a = structuredClone(into.contact);
      const b = from.contact;
      const now = new Date(this.#now()).toISOString();
      const checks: Check[] = [
        ['h', 'c', intoId, into.raw],
        ['h', 'c', fromId, from.raw],
      ];
      const ops: Op[] = [];
      const convIds = await this.conversationIds(fromId);
      checks.push(['n', `cc:${fromId}`, convIds.length]);
      const convRaws = await this.state.hget('conv', convIds);
      for (const [i, cid] of convIds.entries()) {
        const raw = convRaws[i];
        if (!raw) continue;
        checks.push(['h', 'conv', cid, raw]);
        const link = JSON.parse(raw) as ConversationLink;
        ops.push(['hset', 'conv', cid, JSON.stringify({ ...link, contactId: intoId })]);
        ops.push(['zadd', `cc:${intoId}`, link.at, cid]);
      }
      ops.push(['del', `cc:${fromId}`]);
      // Contact scope: the survivor's conversation stays theirs; the other's becomes it when they had none.
      const [openInto, openFrom] = await this.state.hget('open', [intoId, fromId]);
      if (openFrom) {
        checks.push(['h', 'open', fromId, openFrom], ['h', 'open', intoId, openInto ?? false]);
        ops.push(['hdel', 'open', fromId]);
        if (!openInto) ops.push(['hset', 'open', intoId, openFrom]);
      } else checks.push(['h', 'open', fromId, false]);
      await this.#moveIndexes(b.identities, fromId, intoId, checks, ops, new Set());
      const have = new Set(a.identities.map(indexKeyOf));
      for (const i of b.identities) if (!have.has(indexKeyOf(i))) a.identities.push(i);
      a.name ??= b.name;
      a.meta = { ...b.meta, ...a.meta };
      const change: ContactChange = {
        op: 'merged',
        contactId: fromId,
        identities: b.identities.map(({ channel, address }) => ({ channel, address })),
        by,
        reason,
        at: now,
      };
      a.history.push(change);
      a.updatedAt = now;
      ops.push(['hset', 'c', intoId, JSON.stringify(a)], ['hdel', 'c', fromId], ['zrem', 'idx', fromId]);
      await this.#rekeySuggestions(fromId, intoId, checks, ops);
      return { checks, ops, result: { contact: a, changed: true, from: b, conversationIds: convIds } };
    });
  }

  /**
   * Moves one identity, and the conversations that came with it, out of `contactId` into a contact of
   * its own. Repeating it answers that contact, unchanged.
   */
  unmerge(
    contactId: string,
    target: { channel: string; address: string },
    by: string,
    reason: string | null,
  ): Promise<UnmergeResult> {
    return this.#txn<UnmergeResult>(async () => {
      const doc = (await this.#docs([contactId])).get(contactId);
      if (!doc) throw new GatewayError('GW_ERR_NOT_FOUND', `Contact ${contactId} not found`);
      const source = structuredClone(doc.contact);
      const key = `${target.channel}:${target.address}`;
      const moving = source.identities.filter((i) => identityKey(i) === key);
      if (moving.length === 0) {
        const before = [...source.history]
          .reverse()
          .find((h) => h.op === 'unmerged' && h.identities.some((i) => identityKey(i) === key));
        const now = before ? await this.get(before.contactId) : null;
        if (now?.identities.some((i) => identityKey(i) === key))
          return { done: { contact: now, source: doc.contact, changed: false, conversationIds: [] } };
        throw new GatewayError('GW_ERR_IDENTITY_NOT_FOUND', `Contact ${contactId} has no identity ${key}`);
      }
      if (moving.length === source.identities.length)
        throw new GatewayError(
          'GW_ERR_UNMERGE_LAST_IDENTITY',
          `${key} is the only identity of contact ${contactId}; there is nothing to split it from`,
        );
      const now = new Date(this.#now()).toISOString();
      const split: Contact = {
        id: newId('ct'),
        name: null,
        identities: moving,
        meta: {},
        history: [],
        createdAt: now,
        updatedAt: now,
      };
      source.identities = source.identities.filter((i) => identityKey(i) !== key);
      const checks: Check[] = [['h', 'c', contactId, doc.raw]];
      const ops: Op[] = [];
      const movingKeys = new Set(moving.map(indexKeyOf));
      const convIds = await this.conversationIds(contactId);
      checks.push(['n', `cc:${contactId}`, convIds.length]);
      const convRaws = await this.state.hget('conv', convIds);
      const moved: string[] = [];
      for (const [i, cid] of convIds.entries()) {
        const raw = convRaws[i];
        if (!raw) continue;
        const link = JSON.parse(raw) as ConversationLink;
        if (!movingKeys.has(link.identity)) continue;
        checks.push(['h', 'conv', cid, raw]);
        ops.push(['hset', 'conv', cid, JSON.stringify({ ...link, contactId: split.id })]);
        ops.push(['zrem', `cc:${contactId}`, cid], ['zadd', `cc:${split.id}`, link.at, cid]);
        moved.push(cid);
      }
      // Contact scope: a conversation that leaves with the identity stays the conversation of whoever has it.
      const [open] = await this.state.hget('open', [contactId]);
      checks.push(['h', 'open', contactId, open ?? false]);
      if (open && moved.includes(open))
        ops.push(['hdel', 'open', contactId], ['hset', 'open', split.id, open]);
      const kept = new Set(source.identities.map(linkKeyOf).filter((l): l is string => l !== null));
      await this.#moveIndexes(moving, contactId, split.id, checks, ops, kept);
      const identities = moving.map(({ channel, address }) => ({ channel, address }));
      split.history.push({ op: 'unmerged', contactId, identities, by, reason, at: now });
      source.history.push({ op: 'unmerged', contactId: split.id, identities, by, reason, at: now });
      source.updatedAt = now;
      ops.push(
        ['hset', 'c', contactId, JSON.stringify(source)],
        ['hset', 'c', split.id, JSON.stringify(split)],
        ['zadd', 'idx', 0, split.id],
      );
      return { checks, ops, result: { contact: split, source, changed: true, conversationIds: moved } };
    });
  }

  /**
   * Points the identity, link and loose indexes of `identities` from `fromId` to `toId`. A link key
   * in `kept` stays with `fromId` (it still holds another identity with it); the other one shares it.
   */
  async #moveIndexes(
    identities: readonly Identity[],
    fromId: string,
    toId: string,
    checks: Check[],
    ops: Op[],
    kept: ReadonlySet<string>,
  ): Promise<void> {
    const keys = identities.map(indexKeyOf);
    const linkKeys = [...new Set(identities.map(linkKeyOf).filter((l): l is string => l !== null))];
    const [owners, linked, loose] = await Promise.all([
      this.state.hget('id', keys),
      this.state.hget('link', linkKeys),
      this.state.hget('loose', linkKeys),
    ]);
    for (const [i, key] of keys.entries()) {
      if (owners[i] !== fromId) continue;
      checks.push(['h', 'id', key, fromId]);
      ops.push(['hset', 'id', key, toId]);
    }
    for (const [i, l] of linkKeys.entries()) {
      if (linked[i] === fromId && !kept.has(l)) {
        checks.push(['h', 'link', l, fromId]);
        ops.push(['hset', 'link', l, toId]);
      }
      const holders = parseList(loose[i] ?? null);
      if (holders.includes(fromId)) {
        checks.push(['h', 'loose', l, loose[i]!]);
        const next = new Set(kept.has(l) ? holders : holders.filter((h) => h !== fromId));
        next.add(toId);
        ops.push(['hset', 'loose', l, JSON.stringify([...next])]);
      }
    }
  }

  async #rekeySuggestions(fromId: string, intoId: string, checks: Check[], ops: Op[]): Promise<void> {
    const all = await this.state.hgetall('sug');
    for (const [k, raw] of Object.entries(all)) {
      const s = JSON.parse(raw) as MergeSuggestion;
      if (!s.contactIds.includes(fromId)) continue;
      checks.push(['h', 'sug', k, raw]);
      ops.push(['hdel', 'sug', k]);
      const other = s.contactIds[0] === fromId ? s.contactIds[1] : s.contactIds[0];
      if (other === intoId || other === fromId) continue;
      const nk = pairKey(intoId, other);
      if (all[nk] === undefined)
        ops.push([
          'hset',
          'sug',
          nk,
          JSON.stringify({ ...s, contactIds: [intoId, other].sort() as [string, string] }),
        ]);
    }
  }

  async suggestions(): Promise<MergeSuggestion[]> {
    const all = await this.state.hgetall('sug');
    return Object.values(all)
      .map((raw) => JSON.parse(raw) as MergeSuggestion)
      .sort((a, b) => (a.at < b.at ? -1 : a.at > b.at ? 1 : 0));
  }

  /**
   * Removes a contact and every index entry of theirs (identities, links, conversation links,
   * suggestions), and scrubs the identities other contacts recorded of them in their history.
   * `conversationIds` are the conversations the caller erased: when more came meanwhile, nothing is
   * written and the answer is the full list now, for the caller to erase those too.
   */
  remove(
    contactId: string,
    conversationIds: readonly string[],
  ): Promise<{ removed: boolean; pending: string[] }> {
    return this.#txn<{ removed: boolean; pending: string[] }>(async () => {
      const doc = (await this.#docs([contactId])).get(contactId);
      if (!doc) return { done: { removed: false, pending: [] } };
      const c = doc.contact;
      const convIds = await this.conversationIds(contactId);
      const known = new Set(conversationIds);
      const pending = convIds.filter((id) => !known.has(id));
      if (pending.length > 0) return { done: { removed: false, pending } };
      const checks: Check[] = [
        ['h', 'c', contactId, doc.raw],
        ['n', `cc:${contactId}`, convIds.length],
      ];
      const ops: Op[] = [];
      for (const cid of convIds) ops.push(['hdel', 'conv', cid]);
      ops.push(['del', `cc:${contactId}`], ['hdel', 'c', contactId], ['zrem', 'idx', contactId]);
      ops.push(['hdel', 'open', contactId]);
      const keys = c.identities.map(indexKeyOf);
      const linkKeys = [...new Set(c.identities.map(linkKeyOf).filter((l): l is string => l !== null))];
      const [owners, linked, loose] = await Promise.all([
        this.state.hget('id', keys),
        this.state.hget('link', linkKeys),
        this.state.hget('loose', linkKeys),
      ]);
      for (const [i, key] of keys.entries()) {
        if (owners[i] !== contactId) continue;
        checks.push(['h', 'id', key, contactId]);
        ops.push(['hdel', 'id', key]);
      }
      for (const [i, l] of linkKeys.entries()) {
        if (linked[i] === contactId) {
          checks.push(['h', 'link', l, contactId]);
          ops.push(['hdel', 'link', l]);
        }
        const holders = parseList(loose[i] ?? null);
        if (holders.includes(contactId)) {
          checks.push(['h', 'loose', l, loose[i]!]);
          const rest = holders.filter((h) => h !== contactId);
          ops.push(rest.length > 0 ? ['hset', 'loose', l, JSON.stringify(rest)] : ['hdel', 'loose', l]);
        }
      }
      const sugs = await this.state.hgetall('sug');
      for (const [k, raw] of Object.entries(sugs)) {
        if (!k.split(' ').includes(contactId)) continue;
        checks.push(['h', 'sug', k, raw]);
        ops.push(['hdel', 'sug', k]);
      }
      // Others' history names the identities that went to or came from this contact: scrub them.
      const others = [...new Set(c.history.map((h) => h.contactId))].filter((id) => id !== contactId);
      const otherDocs = await this.#docs(others);
      for (const [id, o] of otherDocs) {
        const scrubbed = structuredClone(o.contact);
        for (const h of scrubbed.history) if (h.contactId === contactId) h.identities = [];
        checks.push(['h', 'c', id, o.raw]);
        ops.push(['hset', 'c', id, JSON.stringify(scrubbed)]);
      }
      return { checks, ops, result: { removed: true, pending: [] } };
    });
  }
}

function matches(c: Contact, query: ContactQuery): boolean {
  if (query.meta) {
    for (const [k, v] of Object.entries(query.meta)) {
      const have = Object.hasOwn(c.meta, k) ? c.meta[k] : undefined;
      if (have === undefined || have === null || String(have) !== v) return false;
    }
  }
  if (query.q) {
    const q = query.q.toLowerCase();
    const hay = [c.name ?? '', ...c.identities.map((i) => i.address)].map((s) => s.toLowerCase());
    if (!hay.some((s) => s.includes(q))) return false;
  }
  return true;
}
