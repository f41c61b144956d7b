/**
 * @module Outbound webhooks as a whole: subscriptions, the event listener that fans each domain event
 * out to the subscribed endpoints (one write per endpoint, nothing sent inline), the dispatcher, the
 * delivery log and replay. Endpoints are cached per process; every change is announced on the store's
 * bus so other processes reload theirs.
 */
import type { Logger } from 'pino';
import { GatewayError } from '../core/errors.js';
import type { DomainEvent, EventType } from '../core/events.js';
import { newId } from '../core/ids.js';
import type { Bus, Page } from '../core/store.js';
import type { ConcurrencyLimit, SharedBreakers } from '../pacing/index.js';
import { type AttemptObserver, Dispatcher, type EndpointSource } from './dispatcher.js';
import { pingEvent, toWebhookEvent, type WebhookEvent } from './events.js';
import type { WebhookOptions } from './options.js';
import type {
  DeliveryData,
  DeliveryQuery,
  DeliveryRecord,
  DeliveryState,
  EndpointRecord,
  WebhookRepo,
} from './repo.js';
import { generateSecret } from './signing.js';
import { TargetRefusedError, vetTarget } from './ssrf.js';

/** Bus topic announcing that the endpoint list changed. */
const TOPIC = 'webhooks.endpoints';
/**
 * Bus topic on which a process without a dispatcher (`ROLE=web`) says it queued deliveries, so the
 * dispatchers elsewhere send them now rather than at their next poll.
 */
const QUEUED_TOPIC = 'webhooks.queued';
/** The cache is reloaded at least this often, in case an announcement was missed (bus reconnects). */
const CACHE_TTL_MS = 10_000;
/** Dead letters replayed per storage round trip. */
const REPLAY_BATCH = 200;

/**
 * A subscription as the API shows it: never the secrets, and `previousSecretExpiresAt` only while the
 * replaced secret still signs (`null` after).
 */
export type EndpointView = Omit<EndpointRecord, 'secret' | 'previousSecret'>;

/** A delivery as the API shows it: everything but the body. */
export interface DeliveryView extends Omit<DeliveryData, 'body' | 'endpointId' | 'lane'>, DeliveryState {
  webhookId: string;
}

export interface EndpointInput {
  url: string;
  events: EventType[];
  description?: string | null;
}

export interface EndpointPatch {
  url?: string;
  events?: EventType[];
  description?: string | null;
  enabled?: boolean;
  rotateSecret?: boolean;
}

export function endpointView(e: EndpointRecord, now = Date.now()): EndpointView {
  const graceLeft = e.previousSecretExpiresAt !== null && Date.parse(e.previousSecretExpiresAt) > now;
  return {
    id: e.id,
    url: e.url,
    events: e.events,
    description: e.description,
    enabled: e.enabled,
    disabledReason: e.disabledReason,
    previousSecretExpiresAt: graceLeft ? e.previousSecretExpiresAt : null,
    createdAt: e.createdAt,
    updatedAt: e.updatedAt,
  };
}

export function deliveryView(d: DeliveryRecord): DeliveryView {
  const { body: _body, endpointId, lane: _lane, state, ...data } = d;
  return { webhookId: endpointId, ...data, ...state };
}

function newState(at: string): DeliveryState {
  return {
    status: 'pending',
    attempts: 0,
    responseStatus: null,
    latencyMs: null,
    lastError: null,
    nextAttemptAt: null,
    updatedAt: at,
    deliveredAt: null,
    deadAt: null,
    replayedBy: null,
  };
}

function notFound(kind: 'Webhook' | 'Delivery', id: string): GatewayError {
  return new GatewayError('GW_ERR_NOT_FOUND', `${kind} ${id} not found`);
}

export class WebhookService implements EndpointSource {
  readonly repo: WebhookRepo;
  readonly dispatcher: Dispatcher;
  readonly #opts: WebhookOptions;
  readonly #allowPrivate: boolean;
  readonly #logger: Logger;
  readonly #bus: Bus;
  #cache: { at: number; endpoints: EndpointRecord[] } | null = null;
  #loading: Promise<EndpointRecord[]> | null = null;
  #unsubscribe: (() => Promise<void>) | null = null;
  #unsubscribeQueued: (() => Promise<void>) | null = null;
  #dispatching = false;

  constructor(deps: {
    repo: WebhookRepo;
    bus: Bus;
    options: WebhookOptions;
    allowPrivate: boolean;
    logger: Logger;
    onAttempt?: AttemptObserver;
    /** The per-endpoint limit and breakers, shared by every process on one Redis. */
    pacing?: { limits: ConcurrencyLimit; breakers: SharedBreakers };
  }) {
    this.repo = deps.repo;
    this.#bus = deps.bus;
    this.#opts = deps.options;
    this.#allowPrivate = deps.allowPrivate;
    this.#logger = deps.logger;
    this.dispatcher = new Dispatcher({
      repo: deps.repo,
      source: this,
      options: deps.options,
      allowPrivate: deps.allowPrivate,
      logger: deps.logger,
      ...(deps.onAttempt ? { onAttempt: deps.onAttempt } : {}),
      ...(deps.pacing ? { pacing: deps.pacing } : {}),
    });
  }

  /**
   * Follows endpoint changes (the listener enqueues for the current list in every role) and, unless
   * `dispatch` is false (`ROLE=web`), starts the dispatcher that sends what is queued.
   */
  async start({ dispatch = true }: { dispatch?: boolean } = {}): Promise<void> {
    this.#unsubscribe = await this.#bus.subscribe(TOPIC, () => {
      this.#cache = null;
      this.dispatcher.wake();
    });
    await this.endpoints();
    if (dispatch) {
      this.#unsubscribeQueued = await this.#bus.subscribe(QUEUED_TOPIC, () => this.dispatcher.wake());
      this.#dispatching = true;
      this.dispatcher.start();
    }
  }

  async stop(graceMs: number): Promise<void> {
    await this.#unsubscribe?.().catch(() => undefined);
    await this.#unsubscribeQueued?.().catch(() => undefined);
    await this.dispatcher.stop(graceMs);
    await this.repo.close();
  }

  // --- endpoint cache ------------------------------------------------------------------------------

  /** The cached endpoint list while it is fresh; undefined when it has to be loaded. */
  #fresh(): readonly EndpointRecord[] | undefined {
    return this.#cache && Date.now() - this.#cache.at < CACHE_TTL_MS ? this.#cache.endpoints : undefined;
  }

  async endpoints(): Promise<readonly EndpointRecord[]> {
    const fresh = this.#fresh();
    if (fresh) return fresh;
    this.#loading ??= this.repo
      .listEndpoints()
      .then((endpoints) => {
        this.#cache = { at: Date.now(), endpoints };
        return endpoints;
      })
      .finally(() => {
        this.#loading = null;
      });
    return this.#loading;
  }

  async #changed(): Promise<void> {
    this.#cache = null;
    await this.endpoints();
    await this.#bus
      .publish(TOPIC, '1')
      .catch((err) => this.#logger.warn({ err }, 'webhook change not announced'));
    this.dispatcher.wake();
  }

  async disableGone(endpointId: string): Promise<void> {
    const endpoint = await this.repo.getEndpoint(endpointId);
    if (!endpoint?.enabled) return;
    await this.repo.putEndpoint({
      ...endpoint,
      enabled: false,
      disabledReason: 'gone',
      updatedAt: new Date().toISOString(),
    });
    this.#logger.warn({ webhookId: endpointId }, 'webhook endpoint answered 410 Gone; disabled');
    await this.#changed();
  }

  // --- the event listener ---------------------------------------------------------------------------

  /** The EventHub listener: one enqueue per subscribed, enabled endpoint; never sends. */
  readonly onEvent = (event: DomainEvent): Promise<void> | undefined => {
    // With the endpoint list cached and no endpoint taking this event (the usual case on the accept
    // path), nothing is queued and nothing is awaited.
    const cached = this.#fresh();
    if (cached && !cached.some((e) => wants(e, event))) return undefined;
    return this.#onEvent(event);
  };

  async #onEvent(event: DomainEvent): Promise<void> {
    const endpoints = (await this.endpoints()).filter((e) => wants(e, event));
    if (endpoints.length === 0) return;
    const payload = toWebhookEvent(event);
    await Promise.all(endpoints.map((e) => this.#enqueue(e.id, payload, JSON.stringify(payload))));
    this.#queued();
  }

  /** Work was queued: the local dispatcher looks now, or, without one, the others are told. */
  #queued(): void {
    this.dispatcher.wake();
    if (!this.#dispatching)
      this.#bus
        .publish(QUEUED_TOPIC, '1')
        .catch((err) => this.#logger.warn({ err }, 'queued webhook deliveries not announced'));
  }

  /** Queues a new event for one endpoint (replays go through {@link #replayOne}). */
  async #enqueue(endpointId: string, event: WebhookEvent, body: string): Promise<DeliveryRecord> {
    const at = new Date().toISOString();
    const data: DeliveryData = {
      id: newId('dlv'),
      endpointId,
      eventId: event.id,
      eventType: event.type,
      conversationId: event.conversationId,
      lane: event.conversationId ?? (event.data.contact as { id?: string } | undefined)?.id ?? 'ping',
      seq: event.seq,
      body,
      replayOf: null,
      createdAt: at,
    };
    const state = newState(at);
    await this.repo.enqueue(data, state, Date.now(), this.#opts.reorderWindowMs);
    return { ...data, state };
  }

  // --- subscriptions --------------------------------------------------------------------------------

  /** Checks the target against the SSRF policy; a refusal is a 400 naming the address class. */
  async #vet(url: string): Promise<void> {
    try {
      await vetTarget(new URL(url), { allowPrivate: this.#allowPrivate, resolve: this.#opts.resolve });
    } catch (err) {
      if (!(err instanceof TargetRefusedError)) throw err;
      throw new GatewayError('GW_ERR_WEBHOOK_TARGET_REFUSED', `url: ${err.message}`, {
        errors: [{ field: 'url', message: err.message }],
        reason: err.reason,
      });
    }
  }

  async #get(id: string): Promise<EndpointRecord> {
    const endpoint = await this.repo.getEndpoint(id);
    if (!endpoint) throw notFound('Webhook', id);
    return endpoint;
  }

  async create(input: EndpointInput): Promise<{ endpoint: EndpointRecord; secret: string }> {
    await this.#vet(input.url);
    const at = new Date().toISOString();
    const secret = generateSecret();
    const endpoint: EndpointRecord = {
      id: newId('wh'),
      url: input.url,
      events: input.events,
      description: input.description ?? null,
      enabled: true,
      disabledReason: null,
      secret,
      previousSecret: null,
      previousSecretExpiresAt: null,
      createdAt: at,
      updatedAt: at,
    };
    await this.repo.putEndpoint(endpoint);
    await this.#changed();
    return { endpoint, secret };
  }

  get(id: string): Promise<EndpointRecord> {
    return this.#get(id);
  }

  async list(query: { cursor?: string; take: number; order: 'asc' | 'desc' }): Promise<Page<EndpointRecord>> {
    let all = await this.repo.listEndpoints();
    if (query.order === 'desc') all = all.reverse();
    const { cursor } = query;
    const start =
      cursor === undefined
        ? 0
        : all.findIndex((e) => (query.order === 'asc' ? e.id > cursor : e.id < cursor));
    const from = start < 0 ? all.length : start;
    const items = all.slice(from, from + query.take);
    const more = from + query.take < all.length;
    return { items, cursor: more ? items[items.length - 1]!.id : null };
  }

  async update(id: string, patch: EndpointPatch): Promise<{ endpoint: EndpointRecord; secret?: string }> {
    const current = await this.#get(id);
    if (patch.url !== undefined) await this.#vet(patch.url);
    const now = Date.now();
    const next: EndpointRecord = {
      ...current,
      ...(patch.url !== undefined ? { url: patch.url } : {}),
      ...(patch.events !== undefined ? { events: patch.events } : {}),
      ...(patch.description !== undefined ? { description: patch.description } : {}),
      updatedAt: new Date(now).toISOString(),
    };
    if (patch.enabled !== undefined) {
      next.enabled = patch.enabled;
      next.disabledReason = null;
    }
    let secret: string | undefined;
    if (patch.rotateSecret) {
      secret = generateSecret();
      next.previousSecret = current.secret;
      next.previousSecretExpiresAt = new Date(now + this.#opts.rotationGraceMs).toISOString();
      next.secret = secret;
    }
    await this.repo.putEndpoint(next);
    await this.#changed();
    return secret === undefined ? { endpoint: next } : { endpoint: next, secret };
  }

  async remove(id: string): Promise<void> {
    if (!(await this.repo.deleteEndpoint(id))) throw notFound('Webhook', id);
    await this.#changed();
  }

  /** Queues a `ping` event to the endpoint, whatever it subscribes to. */
  async ping(id: string): Promise<DeliveryRecord> {
    const endpoint = await this.#get(id);
    if (!endpoint.enabled) {
      throw new GatewayError('GW_ERR_CONFLICT', `Webhook ${id} is disabled; enable it before testing`);
    }
    const event = pingEvent(id);
    const delivery = await this.#enqueue(id, event, JSON.stringify(event));
    this.#queued();
    return delivery;
  }

  // --- deliveries -----------------------------------------------------------------------------------

  async deliveries(id: string, query: DeliveryQuery): Promise<Page<DeliveryRecord>> {
    await this.#get(id);
    return this.repo.listDeliveries(id, query);
  }

  async delivery(id: string, deliveryId: string): Promise<DeliveryRecord> {
    await this.#get(id);
    const delivery = await this.repo.getDelivery(id, deliveryId);
    if (!delivery) throw notFound('Delivery', deliveryId);
    return delivery;
  }

  /**
   * Sends a finished delivery again as a new delivery with the same event id (`webhook-id`) and body,
   * queued behind its conversation's current events. A delivery that was replayed already is not
   * queued again: the answer is its replay, so a request repeated or racing another never sends
   * twice. With `again`, a new replay is queued once the last one has succeeded or died (never while
   * it is still pending or retrying). See docs/webhooks-ordering.md.
   */
  async replay(id: string, deliveryId: string, again = false): Promise<DeliveryRecord> {
    const original = await this.delivery(id, deliveryId);
    if (original.state.status === 'pending' || original.state.status === 'retrying') {
      throw new GatewayError('GW_ERR_CONFLICT', `Delivery ${deliveryId} is still ${original.state.status}`);
    }
    const replayed = await this.#replayOne(original, again);
    if (!replayed) throw notFound('Delivery', deliveryId);
    this.#queued();
    return replayed.delivery;
  }

  /** Replays every dead-lettered delivery that died at or after `since`, in event order. */
  async replayDeadSince(id: string, since: Date): Promise<DeliveryRecord[]> {
    await this.#get(id);
    const replayed: DeliveryRecord[] = [];
    for (;;) {
      // Each replayed delivery leaves the dead-letter index, so the next batch starts where this ended.
      const batch = await this.repo.deadSince(id, since.getTime(), REPLAY_BATCH);
      for (const original of batch) {
        // One expired meanwhile, or replayed by a request racing this one: nothing to send here.
        const result = await this.#replayOne(original);
        if (result?.created) replayed.push(result.delivery);
      }
      if (batch.length < REPLAY_BATCH) break;
    }
    if (replayed.length > 0) this.#queued();
    return replayed;
  }

  /**
   * Queues a replay of `original`, or answers with its earlier replay (see {@link replay}); null when
   * the original is no longer kept.
   */
  async #replayOne(
    original: DeliveryRecord,
    again = false,
  ): Promise<{ delivery: DeliveryRecord; created: boolean } | null> {
    const now = Date.now();
    const at = new Date(now).toISOString();
    const { state: _finished, ...same } = original;
    const data: DeliveryData = { ...same, id: newId('dlv'), replayOf: original.id, createdAt: at };
    const state = newState(at);
    const result = await this.repo.replay(original.id, data, state, now, again);
    if (result === null) return null;
    if ('conflict' in result) {
      throw new GatewayError('GW_ERR_CONFLICT', `Delivery ${original.id} is still ${result.conflict}`);
    }
    if (result.created) return { delivery: { ...data, state }, created: true };
    const pending = await this.repo.getDelivery(original.endpointId, result.id);
    return { delivery: pending ?? { ...data, id: result.id, state }, created: false };
  }
}

/** Whether an endpoint takes an event: enabled and subscribed to its type. */
function wants(endpoint: EndpointRecord, event: DomainEvent): boolean {
  return endpoint.enabled && endpoint.events.includes(event.type);
}
