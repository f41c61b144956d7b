/**
 * @module Contacts (SPEC §9): gives every sender a contact as their messages come in, links
 * identities only on verified identifiers, merges, unmerges and erases, and announces each change.
 * The repository (`repo.ts`) is the truth about which contact a conversation belongs to; the
 * `contactId` on a conversation's participants is a copy, brought up to date after each merge or
 * unmerge and again whenever that sender writes, so a crash between the two heals on its own.
 */
import type { Logger } from 'pino';
import type { SenderIdentity } from '../core/channel.js';
import { GatewayError } from '../core/errors.js';
import type { EventHub } from '../core/events.js';
import type { ChannelName, Conversation, Message, Participant } from '../core/model.js';
import type { Page, Store } from '../core/store.js';
import type { BotContact, Contact, Identity } from './model.js';
import type { ContactPatch, ContactRepo, MergeResult, UnmergeResult } from './repo.js';
import { normalizeAddress } from './rules.js';
import type { Sweeper } from './sweep.js';

/** Passes over a contact's conversations an erasure makes before giving up on a stream of new ones. */
const ERASE_ROUNDS = 8;
/** Messages read per page while gathering a timeline. */
const PAGE = 200;
/** Needles shorter than this would match unrelated entries in the erasure sweep. */
const MIN_NEEDLE = 5;

export interface TimelineQuery {
  cursor?: string;
  take: number;
  order: 'asc' | 'desc';
}

function timelineCursor(m: Message): string {
  return Buffer.from(`${m.createdAt}|${m.id}`).toString('base64url');
}

function parseTimelineCursor(cursor: string): Pick<Message, 'createdAt' | 'id'> {
  const parts = Buffer.from(cursor, 'base64url').toString('utf8').split('|');
  if (parts.length !== 2 || !parts[0] || !parts[1]?.startsWith('msg_'))
    throw new GatewayError('GW_ERR_INVALID_CURSOR', 'The cursor is not one this list gave out');
  return { createdAt: parts[0], id: parts[1] };
}

/** Time order; message ids (time-sortable) order messages of the same millisecond. */
function compareMessages(a: Pick<Message, 'createdAt' | 'id'>, b: Pick<Message, 'createdAt' | 'id'>): number {
  if (a.createdAt !== b.createdAt) return a.createdAt < b.createdAt ? -1 : 1;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

export function toBotContact(c: Contact): BotContact {
  return { id: c.id, name: c.name, identities: c.identities, meta: c.meta };
}

export class ContactService {
  readonly repo: ContactRepo;
  readonly #store: Store;
  readonly #events: EventHub;
  readonly #sweeper: Sweeper | null;
  readonly #logger: Logger | undefined;

  constructor(deps: {
    repo: ContactRepo;
    store: Store;
    events: EventHub;
    sweeper: Sweeper | null;
    logger?: Logger;
  }) {
    this.repo = deps.repo;
    this.#store = deps.store;
    this.#events = deps.events;
    this.#sweeper = deps.sweeper;
    this.#logger = deps.logger;
  }

  /** The identities a sender carries: their own on the channel first, then what came with it. */
  identitiesOf(channel: ChannelName, from: Participant, identity?: SenderIdentity): [Identity, Identity[]] {
    const primary: Identity = {
      channel,
      address: normalizeAddress(channel, identity?.address ?? from.address ?? from.id),
      verified: identity?.verified === true,
      source: identity?.source ?? 'none',
    };
    const also = (identity?.also ?? [])
      .filter((i) => i.address.trim() !== '')
      .map((i) => ({ ...i, address: normalizeAddress(i.channel, i.address) }));
    return [primary, also];
  }

  /** Finds or creates the sender's contact; answers the participant with its `contactId`. */
  async contactOf(channel: ChannelName, from: Participant, identity?: SenderIdentity): Promise<Participant> {
    if (from.role !== 'user') return from;
    const [primary, also] = this.identitiesOf(channel, from, identity);
    const r = await this.repo.identify(primary, also, from.name);
    if (r.created) await this.#emit('contact.created', r.contact);
    else if (r.updated) {
      await this.#emit('contact.updated', r.contact, {
        changes: ['identities'],
        ...(r.linkedBy
          ? { reason: `linked by ${r.linkedBy.channel}:${r.linkedBy.address} (${r.linkedBy.source})` }
          : {}),
      });
    }
    if (r.suggestions.length > 0)
      this.#logger?.info(
        { contactId: r.contact.id, suggestions: r.suggestions.length },
        'contacts: merge suggested',
      );
    return { ...from, contactId: r.contact.id };
  }

  /**
   * Attaches a conversation to the contact holding the sender's identity now (idempotent), and
   * brings the participant's `contactId` up to date when a merge moved it meanwhile.
   */
  async attachContact(
    conversation: Conversation,
    channel: ChannelName,
    from: Participant,
    identity?: SenderIdentity,
  ): Promise<Conversation> {
    if (from.role !== 'user') return conversation;
    const [primary] = this.identitiesOf(channel, from, identity);
    const link = await this.repo.attach(conversation.id, primary);
    if (!link) return conversation;
    const stored = conversation.participants.find((p) => p.id === from.id);
    if (stored?.contactId === link.contactId) return conversation;
    const updated = await this.#store.updateConversation(conversation.id, {
      participants: [{ ...(stored ?? from), contactId: link.contactId }],
    });
    return updated ?? conversation;
  }

  /**
   * Contact scope (SPEC §9): the conversation the contact's channel threads join, or null when they
   * have none yet (or it was deleted).
   */
  async conversationOf(contactId: string): Promise<Conversation | null> {
    const id = await this.repo.openOf(contactId);
    return id ? this.#store.getConversation(id) : null;
  }

  /**
   * Makes `conversationId` the contact's conversation unless they have a live one already (a deleted
   * one is replaced). Answers the contact's conversation id afterwards; null when the contact is gone.
   */
  async claimConversation(contactId: string, conversationId: string): Promise<string | null> {
    for (;;) {
      const current = await this.repo.claimOpen(contactId, conversationId);
      if (current === null || current === conversationId) return current;
      if (await this.#store.getConversation(current)) return current;
      const next = await this.repo.claimOpen(contactId, conversationId, current);
      if (next !== current) return next;
    }
  }

  /** The contact the bot's request carries (SPEC §6, §9). */
  async forBot(conversation: Conversation): Promise<BotContact | undefined> {
    const fallback = conversation.participants.find((p) => p.role === 'user')?.contactId ?? null;
    const contact = await this.repo.contactOfConversation(conversation.id, fallback);
    return contact ? toBotContact(contact) : undefined;
  }

  async get(id: string): Promise<Contact> {
    const c = await this.repo.get(id);
    if (!c) throw new GatewayError('GW_ERR_NOT_FOUND', `Contact ${id} not found`);
    return c;
  }

  async patch(id: string, patch: ContactPatch): Promise<Contact> {
    const c = await this.repo.patch(id, patch);
    if (!c) throw new GatewayError('GW_ERR_NOT_FOUND', `Contact ${id} not found`);
    await this.#emit('contact.updated', c, { changes: Object.keys(patch) });
    return c;
  }

  async merge(intoId: string, fromId: string, by: string, reason: string | null): Promise<MergeResult> {
    const r = await this.repo.merge(intoId, fromId, by, reason);
    if (!r.changed) return r;
    await this.#fixParticipants(r.conversationIds, fromId, intoId);
    await this.#emit('contact.merged', r.contact, {
      otherContactId: fromId,
      by,
      reason,
      conversationIds: r.conversationIds,
    });
    return r;
  }

  async unmerge(
    id: string,
    identity: { channel: string; address: string },
    by: string,
    reason: string | null,
  ): Promise<UnmergeResult> {
    const address = normalizeAddress(identity.channel, identity.address);
    const r = await this.repo.unmerge(id, { channel: identity.channel, address }, by, reason);
    if (!r.changed) return r;
    await this.#fixParticipants(r.conversationIds, id, r.contact.id);
    await this.#emit('contact.unmerged', r.contact, {
      otherContactId: id,
      by,
      reason,
      conversationIds: r.conversationIds,
    });
    return r;
  }

  /** The contact's conversations, newest first. */
  async conversations(id: string, query: { cursor?: string; take: number }): Promise<Page<Conversation>> {
    await this.get(id);
    const ids = await this.repo.conversationIds(id);
    const start = query.cursor ? ids.indexOf(query.cursor) + 1 : 0;
    if (query.cursor && start === 0)
      throw new GatewayError('GW_ERR_INVALID_CURSOR', 'The cursor is not one this list gave out');
    const items: Conversation[] = [];
    let i = start;
    for (; i < ids.length && items.length < query.take; i++) {
      const c = await this.#store.getConversation(ids[i]!);
      if (c) items.push(c);
    }
    return { items, cursor: i < ids.length && items.length > 0 ? ids[i - 1]! : null };
  }

  /** Every message of every conversation of theirs, in time order. */
  async timeline(id: string, query: TimelineQuery): Promise<Page<Message>> {
    await this.get(id);
    const after = query.cursor ? parseTimelineCursor(query.cursor) : null;
    const all: Message[] = [];
    for (const cid of await this.repo.conversationIds(id)) {
      let cursor: string | undefined;
      do {
        const page = await this.#store.listMessages(cid, {
          take: PAGE,
          order: 'asc',
          ...(cursor ? { cursor } : {}),
        });
        all.push(...page.items);
        cursor = page.cursor ?? undefined;
      } while (cursor);
    }
    all.sort(compareMessages);
    if (query.order === 'desc') all.reverse();
    let rest = all;
    if (after) {
      rest = all.filter((m) =>
        query.order === 'desc' ? compareMessages(m, after) < 0 : compareMessages(m, after) > 0,
      );
    }
    const items = rest.slice(0, query.take);
    return { items, cursor: rest.length > query.take ? timelineCursor(items[items.length - 1]!) : null };
  }

  /**
   * Erases a contact: their conversations with messages and attachments, dedupe keys, channel-ref and
   * identity indexes, and the adapters' entries about them. The contact record goes last, so a crash
   * part-way leaves a contact to erase again, never index entries without an owner.
   */
  async erase(id: string): Promise<boolean> {
    const contact = await this.repo.get(id);
    if (!contact) return false;
    const erased = new Set<string>();
    for (let round = 0; round < ERASE_ROUNDS; round++) {
      const ids = (await this.repo.conversationIds(id)).filter((c) => !erased.has(c));
      const needles = new Set<string>();
      const exact = new Set<string>();
      for (const i of contact.identities) {
        needles.add(i.address);
        needles.add(`${i.channel}:${i.address}`);
      }
      if (contact.name) exact.add(contact.name);
      for (const cid of ids) {
        needles.add(cid);
        const c = await this.#store.getConversation(cid);
        if (c) {
          needles.add(c.channelRef);
          for (const p of c.participants) {
            if (p.role !== 'user') continue;
            if (p.address) needles.add(p.address);
            if (p.name) exact.add(p.name);
          }
        }
        await this.#store.deleteConversation(cid);
        erased.add(cid);
      }
      const usable = [...needles].filter((n) => n.length >= MIN_NEEDLE);
      await this.#sweeper?.sweep([...erased], usable, exact);
      const r = await this.repo.remove(id, [...erased]);
      if (r.removed) {
        await this.#events.emit({
          type: 'contact.deleted',
          conversationId: id,
          seq: 0,
          contact: { id },
          conversationIds: [...erased],
        });
        return true;
      }
      if (r.pending.length === 0) return false;
    }
    throw new GatewayError(
      'GW_ERR_CONFLICT',
      `Contact ${id} kept getting new conversations while being erased; retry`,
    );
  }

  async #fixParticipants(conversationIds: readonly string[], fromId: string, toId: string): Promise<void> {
    for (const cid of conversationIds) {
      const c = await this.#store.getConversation(cid);
      const stale = c?.participants.filter(
        (p) =>
          p.role === 'user' && p.contactId !== toId && (p.contactId === fromId || p.contactId === undefined),
      );
      if (!c || !stale || stale.length === 0) continue;
      await this.#store.updateConversation(cid, {
        participants: stale.map((p) => ({ ...p, contactId: toId })),
      });
    }
  }

  async #emit(
    type: 'contact.created' | 'contact.updated' | 'contact.merged' | 'contact.unmerged',
    contact: Contact,
    extra: {
      changes?: string[];
      otherContactId?: string;
      by?: string;
      reason?: string | null;
      conversationIds?: string[];
    } = {},
  ): Promise<void> {
    await this.#events.emit({ type, conversationId: contact.id, seq: 0, contact, ...extra });
  }
}
