/**
 * @module The storage port of outbound webhooks: subscriptions (endpoints) and, per endpoint, an
 * ordered delivery queue, a delivery log and a dead-letter index. Two implementations hold the same
 * contract: in memory for the embedded backend, Redis when `REDIS_URL` is set.
 *
 * Each endpoint's deliveries are split into lanes, one per conversation (pings get their own lane),
 * kept in `seq` order. Only a lane's head is ever attempted, so events of one conversation reach an
 * endpoint in order while other lanes proceed. A lane is scheduled by the time its head may next be
 * tried; claiming it leases the lane (its schedule moves to the lease expiry, so a process that dies
 * mid-attempt hands the lane back) and every later step is fenced by the lease token.
 */
import { encodeTime } from 'ulid';
import type { EventType } from '../core/events.js';
import type { Page } from '../core/store.js';
import type { WebhookEventType } from './events.js';

/** A subscription, as stored. Its secrets never leave the gateway except once, when generated. */
export interface EndpointRecord {
  id: string;
  url: string;
  events: EventType[];
  description: string | null;
  enabled: boolean;
  /** `gone` when the gateway disabled the endpoint after a `410 Gone`; `null` otherwise. */
  disabledReason: 'gone' | null;
  secret: string;
  /** The secret before the last rotation; it keeps signing until `previousSecretExpiresAt`. */
  previousSecret: string | null;
  previousSecretExpiresAt: string | null;
  createdAt: string;
  updatedAt: string;
}

export const DELIVERY_STATUSES = ['pending', 'retrying', 'succeeded', 'dead'] as const;
/**
 * `pending`: queued, waiting for its first attempt or for earlier events of its conversation;
 * `retrying`: an attempt failed and the next one is scheduled; `succeeded`: a 2xx was received;
 * `dead`: dead-lettered (retries exhausted, or the endpoint answered 410), kept for replay.
 */
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];

/** The immutable part of a delivery. */
export interface DeliveryData {
  id: string;
  endpointId: string;
  eventId: string;
  eventType: WebhookEventType;
  conversationId: string | null;
  /** The ordering lane: the conversation id, or `ping`. */
  lane: string;
  seq: number;
  /** The serialised event, exactly the bytes that are signed and sent. */
  body: string;
  /** The delivery this one replays, if any. */
  replayOf: string | null;
  createdAt: string;
}

/** The mutable part of a delivery, replaced as a whole after each attempt. */
export interface DeliveryState {
  status: DeliveryStatus;
  attempts: number;
  /** HTTP status of the last attempt; `null` when no answer came (timeout, reset, refused). */
  responseStatus: number | null;
  latencyMs: number | null;
  lastError: string | null;
  nextAttemptAt: string | null;
  updatedAt: string;
  deliveredAt: string | null;
  deadAt: string | null;
  /** The delivery that replayed this one. */
  replayedBy: string | null;
}

export interface DeliveryRecord extends DeliveryData {
  state: DeliveryState;
}

/** A leased lane head. */
export interface DeliveryClaim {
  endpointId: string;
  lane: string;
  token: string;
  delivery: DeliveryRecord;
}

/**
 * What to do with a claimed head after an attempt: `done` and `dead` remove it from its lane (the next
 * event of the lane is due at once), `retry` keeps it at the head until `at`, `release` hands it back
 * untouched (shutdown).
 */
export type FinishAction = 'done' | 'dead' | 'retry' | 'release';

export interface DeliveryQuery {
  /** The id of the last delivery of the previous page. */
  cursor?: string;
  take: number;
  order: 'asc' | 'desc';
  status?: DeliveryStatus;
}

/**
 * Where a delivery goes in its lane (docs/webhooks-ordering.md): `seq` for an event that adds to its
 * conversation or reports on the conversation as a whole (its `seq` is when it happened); `after`,
 * after everything queued before it, for one reporting a change to an earlier message (its `seq` is
 * that message's) and for a replay.
 */
export function lanePlace(data: DeliveryData): 'seq' | 'after' {
  if (data.replayOf !== null) return 'after';
  return AFTER_TYPES.has(data.eventType) ? 'after' : 'seq';
}

const AFTER_TYPES: ReadonlySet<string> = new Set([
  'message.updated',
  'message.deleted',
  'message.delivery',
  // Contact events have no seq: their lane is the contact's, kept in the order they happened.
  'contact.created',
  'contact.updated',
  'contact.merged',
  'contact.unmerged',
  'contact.deleted',
]);

/** How long finished deliveries stay in the log: succeeded ones 7 days, dead-lettered ones 30 days. */
export const RETENTION_MS = { done: 7 * 86_400_000, dead: 30 * 86_400_000 } as const;

/**
 * Log entries older than this are trimmed as new deliveries arrive: the dead-letter retention plus the
 * longest retry span (under two days), so nothing still pending or retained loses its entry.
 */
export const LOG_HORIZON_MS = RETENTION_MS.dead + 3 * 86_400_000;

/**
 * The smallest delivery id that is still within {@link LOG_HORIZON_MS} of `now`: ids are ULIDs, whose
 * first ten characters encode the creation time, so older ids sort below it.
 */
export function logFloor(now: number): string {
  return `dlv_${encodeTime(Math.max(0, now - LOG_HORIZON_MS), 10)}`;
}

/** Most log entries one list call inspects when filtering by status; a page may then be short. */
export const MAX_SCAN = 5_000;

export interface WebhookRepo {
  readonly kind: 'embedded' | 'redis';

  putEndpoint(endpoint: EndpointRecord): Promise<void>;
  getEndpoint(id: string): Promise<EndpointRecord | null>;
  /** Every endpoint, ordered by id (creation order). */
  listEndpoints(): Promise<EndpointRecord[]>;
  /** Removes the endpoint with its queue, log and dead letters; false when unknown. */
  deleteEndpoint(id: string): Promise<boolean>;

  /**
   * Puts a delivery in its lane by {@link lanePlace}: behind every entry placed at a lower or equal
   * `seq`, in front of those placed higher, but never in front of a head that was attempted or is
   * leased. A head whose place does not continue the lane (more than one past the highest `seq` that
   * left it) is held back until `holdMs` after `now`, in case an earlier event of its conversation is
   * still on its way to the queue (docs/webhooks-ordering.md).
   */
  enqueue(data: DeliveryData, state: DeliveryState, now: number, holdMs?: number): Promise<void>;
  /**
   * Leases up to `max` lanes of an endpoint whose head is due at `now`, until `leaseUntil`.
   * @returns the claims and the earliest time (ms) another lane of the endpoint becomes due, if any.
   */
  claim(
    endpointId: string,
    max: number,
    now: number,
    leaseUntil: number,
  ): Promise<{ claims: DeliveryClaim[]; nextDueAt: number | null }>;
  /**
   * Applies the outcome of an attempt to a claimed head (`state` replaces the stored one; `null`
   * keeps it). For `retry` and `release`, `at` is when the lane is due again.
   * @returns false when the lease was lost (nothing changed).
   */
  finish(
    claim: DeliveryClaim,
    action: FinishAction,
    state: DeliveryState | null,
    at: number,
  ): Promise<boolean>;
  getDelivery(endpointId: string, id: string): Promise<DeliveryRecord | null>;
  listDeliveries(endpointId: string, query: DeliveryQuery): Promise<Page<DeliveryRecord>>;
  /** Dead-lettered deliveries not yet replayed that died at or after `since` (ms), oldest event first. */
  deadSince(endpointId: string, since: number, limit: number): Promise<DeliveryRecord[]>;
  /**
   * Queues `copy` (a replay of `originalId`, `replayOf` set) at the back of its lane and records it on
   * the original (`replayedBy`, dropping it from the dead-letter index), unless the original was
   * replayed already (and its replay is still kept): then nothing is queued, except with `again` once
   * that replay has succeeded or died. One step, so replay requests racing (in any processes) queue
   * one replay between them.
   * @returns the replay that answers the request and whether this call queued it; `null` when the
   *   original is gone; `{ conflict }` when the original itself is still pending or retrying.
   */
  replay(
    originalId: string,
    copy: DeliveryData,
    state: DeliveryState,
    now: number,
    again?: boolean,
  ): Promise<{ id: string; created: boolean } | { conflict: DeliveryStatus } | null>;
  /** Stores `state` for a finished delivery and drops it from the dead-letter index. */
  markReplayed(endpointId: string, id: string, state: DeliveryState): Promise<void>;
  close(): Promise<void>;
}
