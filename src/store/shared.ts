/**
 * @module Record building, patching, filtering and cursors shared by both store backends, so the
 * embedded and Redis stores cannot drift apart on semantics the contract suite checks.
 */
import { GatewayError } from '../core/errors.js';
import { extend } from '../core/extend.js';
import { newId } from '../core/ids.js';
import {
  type Conversation,
  type Delivery,
  type DeliveryStatus,
  isDeliveryAdvance,
  type Message,
  type Meta,
  type Participant,
  type Processing,
  type Route,
} from '../core/model.js';
import type {
  ConversationPatch,
  ConversationQuery,
  MessagePatch,
  MessageQuery,
  NewConversation,
  NewMessage,
} from '../core/store.js';

/** A message before the store assigned its `seq` and `sessionId`. */
export type MessageDraft = Omit<Message, 'seq' | 'sessionId' | 'processing'>;

/** The conversation fields only whole-record updates change (the rest move with every message). */
export type ConversationDoc = Pick<
  Conversation,
  | 'id'
  | 'channel'
  | 'channelRef'
  | 'participants'
  | 'status'
  | 'handoff'
  | 'handoffResume'
  | 'routes'
  | 'meta'
  | 'createdAt'
>;

/** Drops keys whose value is `undefined`, so stored and returned records have the same shape. */
export function compact<T extends object>(value: T): T {
  // A loop rather than fromEntries(entries(...).filter(...)): this runs on every message stored, and
  // the pair arrays were most of what it allocated.
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value)) {
    const v = (value as Record<string, unknown>)[key];
    if (v !== undefined) out[key] = v;
  }
  return out as T;
}

export function conversationDoc(id: string, input: NewConversation, at: string): ConversationDoc {
  return {
    id,
    channel: input.channel,
    channelRef: input.channelRef ?? id,
    participants: input.participants ?? [],
    status: input.status ?? 'open',
    handoff: null,
    ...(input.routes && input.routes.length > 0 ? { routes: input.routes } : {}),
    meta: input.meta ?? {},
    createdAt: at,
  };
}

export function pickConversationDoc(c: Conversation): ConversationDoc {
  return {
    id: c.id,
    channel: c.channel,
    channelRef: c.channelRef,
    participants: c.participants,
    status: c.status,
    // Records written before handoffs existed have none.
    handoff: c.handoff ?? null,
    ...(c.handoffResume ? { handoffResume: c.handoffResume } : {}),
    ...(c.routes ? { routes: c.routes } : {}),
    meta: c.meta,
    createdAt: c.createdAt,
  };
}

/** A new conversation record: created with its first session. */
export function newConversation(
  id: string,
  input: NewConversation,
  at: string,
  sessionId: string,
): Conversation {
  return {
    ...conversationDoc(id, input, at),
    sessionId,
    sessionStartedAt: at,
    sessionState: {},
    updatedAt: at,
    lastMessageAt: null,
  };
}

export function draftMessage(conversationId: string, input: NewMessage, at: string): MessageDraft {
  return compact({
    id: newId('msg'),
    conversationId,
    type: input.type,
    text: input.text,
    name: input.name,
    description: input.description,
    meta: input.meta ?? {},
    entities: input.entities ?? [],
    direction: input.direction,
    channel: input.channel,
    channelRef: input.channelRef,
    externalId: input.externalId,
    clientMessageId: input.clientMessageId,
    attachments: input.attachments ?? [],
    quickReplies: input.quickReplies,
    delivery: input.delivery,
    replyTo: input.replyTo,
    participantId: input.participantId,
    traceparent: input.traceparent,
    createdAt: at,
    updatedAt: at,
  });
}

/** Shallow merge; a key set to `null` in the patch is removed. */
export function mergeMeta(base: Meta, patch: Meta | undefined): Meta {
  if (!patch) return base;
  const out: Meta = { ...base };
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete out[key];
    else out[key] = value;
  }
  return out;
}

function upsertParticipants(list: Participant[], patch: Participant[] | undefined): Participant[] {
  if (!patch) return list;
  const out = [...list];
  for (const p of patch) {
    const i = out.findIndex((q) => q.id === p.id);
    if (i === -1) out.push(p);
    else out[i] = p;
  }
  return out;
}

function removeParticipants(list: Participant[], ids: string[] | undefined): Participant[] {
  return ids && ids.length > 0 ? list.filter((p) => !ids.includes(p.id)) : list;
}

export function applyConversationPatch(c: Conversation, patch: ConversationPatch, at: string): Conversation {
  return extend(c, {
    status: patch.status ?? c.status,
    meta: mergeMeta(c.meta, patch.meta),
    participants: removeParticipants(
      upsertParticipants(c.participants, patch.participants),
      patch.removeParticipants,
    ),
    sessionState: patch.sessionState ?? c.sessionState,
    updatedAt: at,
  });
}

/**
 * Reply ids belong to `recordReplies` alone (they make redelivery idempotent), so stores keep them
 * apart from the rest of `processing` and a patch cannot change them.
 */
export function withoutReplyIds(p: Processing): Processing {
  const { replyIds: _ignored, ...rest } = p;
  return rest;
}

/** The patched message; its `processing` carries no reply ids (see {@link withoutReplyIds}). */
export function applyMessagePatch(m: Message, patch: MessagePatch, at: string): Message {
  return compact(
    extend(m, {
      text: patch.text ?? m.text,
      name: patch.name ?? m.name,
      description: patch.description ?? m.description,
      meta: mergeMeta(m.meta, patch.meta),
      entities: patch.entities ?? m.entities,
      attachments: patch.attachments ?? m.attachments,
      externalId: patch.externalId ?? m.externalId,
      processing: patch.processing
        ? withoutReplyIds(patch.processing)
        : m.processing && withoutReplyIds(m.processing),
      updatedAt: at,
    }),
  );
}

/** True while a queued message waits for or is in processing. */
export function isUnfinished(p: Processing | undefined): boolean {
  return p?.state === 'queued' || p?.state === 'processing';
}

/** The message after a delivery step, or null when the step does not move the status forward. */
export function applyDelivery(
  m: Message,
  status: DeliveryStatus,
  error: { code?: string; message: string } | undefined,
  at: string,
): Message | null {
  if (m.delivery && !isDeliveryAdvance(m.delivery.status, status)) return null;
  const delivery: Delivery = { status, at, ...(status === 'failed' && error ? { error } : {}) };
  return extend(m, { delivery, updatedAt: at });
}

/**
 * A delivery step with the provider's id stored along: the message to write and whether its status
 * moved, or null when neither the status nor the id changes.
 */
export function applyDeliveryUpdate(
  m: Message,
  status: DeliveryStatus,
  error: { code?: string; message: string } | undefined,
  externalId: string | undefined,
  at: string,
): { message: Message; changed: boolean } | null {
  const stepped = applyDelivery(m, status, error, at);
  if (externalId === undefined || externalId === m.externalId) {
    return stepped && { message: stepped, changed: true };
  }
  return { message: extend(stepped ?? m, { externalId, updatedAt: at }), changed: stepped !== null };
}

/** Top-level meta values compared as strings (non-strings by their JSON form); a missing key fails. */
export function metaMatches(meta: Meta, filter: Record<string, string> | undefined): boolean {
  if (!filter) return true;
  for (const [key, want] of Object.entries(filter)) {
    if (!Object.hasOwn(meta, key)) return false;
    const value = meta[key];
    if ((typeof value === 'string' ? value : JSON.stringify(value)) !== want) return false;
  }
  return true;
}

export function conversationMatches(c: Conversation, q: ConversationQuery): boolean {
  return (
    (q.channel === undefined || c.channel === q.channel) &&
    (q.status === undefined || c.status === q.status) &&
    metaMatches(c.meta, q.meta)
  );
}

export function messageMatches(m: Message, q: MessageQuery): boolean {
  return (q.type === undefined || m.type === q.type) && metaMatches(m.meta, q.meta);
}

export function hasConversationFilters(q: ConversationQuery): boolean {
  return (
    q.channel !== undefined ||
    q.status !== undefined ||
    (q.meta !== undefined && Object.keys(q.meta).length > 0)
  );
}

export function hasMessageFilters(q: MessageQuery): boolean {
  return q.type !== undefined || (q.meta !== undefined && Object.keys(q.meta).length > 0);
}

/*
 * Cursors name the last item of the previous page (a conversation id, a message seq), never an
 * offset, so pages stay stable while items are added. They are base64url JSON: opaque to clients,
 * and a conversation cursor cannot be mistaken for a message cursor.
 */

const CURSOR_RE = /^[A-Za-z0-9_-]{1,512}$/;

function invalidCursor(): GatewayError {
  return new GatewayError('GW_ERR_INVALID_CURSOR', 'The cursor is malformed or belongs to another list');
}

function decodeCursor(cursor: string): Record<string, unknown> {
  if (!CURSOR_RE.test(cursor)) throw invalidCursor();
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (typeof value === 'object' && value !== null && !Array.isArray(value))
      return value as Record<string, unknown>;
  } catch {
    // Reported as an invalid cursor below.
  }
  throw invalidCursor();
}

export function conversationCursor(lastId: string): string {
  return Buffer.from(JSON.stringify({ c: lastId })).toString('base64url');
}

/** The conversation id a cursor points after; throws GW_ERR_INVALID_CURSOR. */
export function parseConversationCursor(cursor: string): string {
  const { c } = decodeCursor(cursor);
  if (typeof c !== 'string' || c.length === 0) throw invalidCursor();
  return c;
}

export function messageCursor(lastSeq: number): string {
  return Buffer.from(JSON.stringify({ s: lastSeq })).toString('base64url');
}

/** The seq a cursor points after; throws GW_ERR_INVALID_CURSOR. */
export function parseMessageCursor(cursor: string): number {
  const { s } = decodeCursor(cursor);
  if (typeof s !== 'number' || !Number.isSafeInteger(s) || s < 0) throw invalidCursor();
  return s;
}

/**
 * Builds a page from up to `take + 1` matching items in page order: the extra item only proves that
 * another page exists.
 */
export function toPage<T>(
  items: T[],
  take: number,
  cursorOf: (last: T) => string,
): { items: T[]; cursor: string | null } {
  if (items.length <= take) return { items, cursor: null };
  const page = items.slice(0, take);
  return { items: page, cursor: cursorOf(page[page.length - 1]!) };
}

/** The channel threads a conversation is reached by: its routes, or its own thread alone. */
export function routesOf(c: Pick<Conversation, 'channel' | 'channelRef' | 'meta' | 'routes'>): Route[] {
  return c.routes ?? [{ channel: c.channel, channelRef: c.channelRef, meta: c.meta }];
}

/** The conversation with `route` recorded (unchanged when it has it); the first route is its own thread. */
export function withRoute(c: Conversation, route: Route): Conversation {
  const routes = routesOf(c);
  if (routes.some((r) => r.channel === route.channel && r.channelRef === route.channelRef)) return c;
  return { ...c, routes: [...routes, route] };
}
