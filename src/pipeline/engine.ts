/**
 * @module The delivery engine (SPEC §4, §6). Claims conversations from the store's ordered queue, one
 * message per conversation at a time, runs the bot, records its replies exactly once and hands them to
 * the channel the conversation came from. Completing a message records its outcome and, while the
 * conversation has more queued, leases the next one in the same store call, so a busy conversation is
 * worked through without going back to the scheduler. Leases are kept alive by heartbeats; a lost lease
 * aborts the work without completing it, so the new owner's result is the only one that counts.
 */

import PQueue from 'p-queue';
import type { LogFn, Logger } from 'pino';
import type { AppConfig } from '../../config/schema.js';
import { type BotSettings, DEFAULT_HISTORY_LIMIT } from '../bot-config/schema.js';
import { forChannel } from '../channels/capabilities.js';
import type { ContactService } from '../contacts/service.js';
import { sleep } from '../core/backoff.js';
import { type ChannelAdapter, PermanentSendError, type SendResult } from '../core/channel.js';
import { detectEntities } from '../core/entities.js';
import { GatewayError } from '../core/errors.js';
import type { EventHub } from '../core/events.js';
import { newId } from '../core/ids.js';
import type {
  Attachment,
  ChannelName,
  Conversation,
  ConversationStatus,
  Message,
  Meta,
  Processing,
  QuickReply,
} from '../core/model.js';
import type { Claim, NewMessage, ProcessingOutcome, Store } from '../core/store.js';
import { CUSTOMER_REQUEST } from '../handoff/machine.js';
import type { HandoffService } from '../handoff/service.js';
import type { Metrics } from '../metrics.js';
import { contextOf, currentTraceparent, inSpan, recordSpan, SpanKind, tracingOn } from '../tracing/index.js';
import { Typing, type TypingSlot } from '../typing/index.js';
import {
  isWhatsApp,
  lastCustomerMessageAt,
  TEMPLATE_META,
  templateChannel,
  templateOf,
  type WhatsAppTemplate,
  windowOpen,
} from '../whatsapp/window.js';
import { type Bot, BotError, type BotResponse } from './bot/types.js';
import type { DeliveryService } from './delivery.js';

/** A message claimed this many times without finishing is set aside instead of crashing workers forever. */
const MAX_DELIVERIES = 5;
/** Longest idle wait between claim attempts; bounds how late an expired lease is noticed. */
const MAX_IDLE_WAIT_MS = 1_000;
/**
 * Messages of one conversation a worker slot handles in a row (completing one leases the next) before
 * handing the conversation back to the scheduler, so that when conversations outnumber worker slots a
 * busy one cannot hold a slot while others wait.
 */
const MAX_CONSECUTIVE = 32;
const PROCESSED_TOPIC = 'processed';

/** An adapter with a transport (`send`), as {@link Engine} checks before sending. */
type SendingAdapter = ChannelAdapter & Required<Pick<ChannelAdapter, 'send'>>;

/** The logging a message's processing does. */
type MessageLog = Pick<Logger, 'info' | 'warn' | 'error'>;

/**
 * A child logger built on first use. Building one (bindings serialized, redaction set up) costs more
 * than the rest of a no-op message's processing, and most messages log nothing.
 */
function lazyChild(base: Logger, bindings: Record<string, string>): MessageLog {
  let child: Logger | undefined;
  const level =
    (name: keyof MessageLog): LogFn =>
    (...args: unknown[]) => {
      child ??= base.child(bindings);
      (child[name] as (...a: unknown[]) => void)(...args);
    };
  return { info: level('info'), warn: level('warn'), error: level('error') };
}

/** What processing a message came to: its outcome, and replies the completion is to record. */
interface Processed {
  outcome: ProcessingOutcome;
  /** For a channel where storing is delivering: the replies, recorded in the completing store step. */
  record?: NewMessage[];
}

class LeaseLostError extends Error {
  constructor() {
    super('lease lost');
    this.name = 'LeaseLostError';
  }
}

/**
 * One claim's lease as a worker holds it: the claim (its fencing token), the signal that aborts the
 * work on that claim alone, and its heartbeat. A lease ends when its claim is completed, given up or
 * handed back; an ended lease is no longer renewed and can no longer be aborted by its heartbeat.
 */
class Lease {
  readonly claim: Claim;
  readonly abort = new AbortController();
  ended = false;
  /** Stops the heartbeat; set when it starts. */
  stop: () => void = () => undefined;

  constructor(claim: Claim) {
    this.claim = claim;
  }

  end(): void {
    this.ended = true;
    this.stop();
  }
}

/** A worker slot: the claim it works on now, that claim's lease, and whether shutdown is taking it back. */
interface Slot {
  claim: Claim;
  lease: Lease;
  handingBack: boolean;
}

export interface OutboundInput {
  /** @default 'bot'; `agent` for a human agent's message (SPEC §8). */
  type?: 'bot' | 'agent';
  /** The author's participant id. */
  participantId?: string;
  text: string;
  name?: string;
  meta?: Meta;
  attachments?: Attachment[];
  quickReplies?: QuickReply[];
  /**
   * Contact scope (SPEC §9): the channel to send on, among those the conversation is reached by;
   * by default the channel of the customer's latest message.
   */
  channel?: ChannelName;
  /** A WhatsApp template (Twilio Content API or Cloud API), the only kind allowed outside the 24-hour window. */
  template?: WhatsAppTemplate;
}

/**
 * Contact scope (SPEC §9): the conversation as one of its channel threads sees it, for the adapter
 * that answers on that thread (its channel, ref and the meta the thread brought). A conversation
 * without routes, or a message without a thread, answers the conversation itself.
 */
export function throughThread(
  conversation: Conversation,
  thread: Pick<Message, 'channel' | 'channelRef'>,
): Conversation {
  const { channel, channelRef } = thread;
  if (!conversation.routes || !channel || channelRef === undefined) return conversation;
  if (channel === conversation.channel && channelRef === conversation.channelRef) return conversation;
  const route = conversation.routes.find((r) => r.channel === channel && r.channelRef === channelRef);
  return { ...conversation, channel, channelRef, meta: { ...conversation.meta, ...route?.meta } };
}

export interface EngineDeps {
  config: AppConfig;
  logger: Logger;
  store: Store;
  bot: Bot;
  adapters: readonly ChannelAdapter[];
  events: EventHub;
  metrics: Metrics;
  delivery: DeliveryService;
  handoff: HandoffService;
  /** The contact the bot's request carries (SPEC §6, §9); see `src/contacts/`. */
  contacts?: Pick<ContactService, 'forBot'>;
  /**
   * The bot settings in force (SPEC §10), read at each message: the history size and the fallback
   * reply. Without it, the environment's.
   */
  botSettings?: { readonly current: Pick<BotSettings, 'historyLimit' | 'fallbackText'> };
  /** The typing indicators (src/typing/); by default from `TYPING_AFTER_MS`. */
  typing?: Typing;
}

export class Engine {
  readonly owner = newId('part');
  readonly #deps: EngineDeps;
  readonly #log: Logger;
  readonly #queue: PQueue;
  readonly #typing: Typing;
  /** Worker slots in use: the claim each one currently holds (it moves on as it continues). */
  readonly #inFlight = new Set<Slot>();
  readonly #waiters = new Map<string, Set<() => void>>();
  readonly #stopLoop = new AbortController();
  #loop: Promise<void> | null = null;
  #unsubscribe: (() => Promise<void>) | null = null;
  #storeDown = false;

  constructor(deps: EngineDeps) {
    this.#deps = deps;
    this.#log = deps.logger.child({ component: 'engine' });
    this.#queue = new PQueue({ concurrency: deps.config.WORKER_CONCURRENCY });
    this.#typing = deps.typing ?? new Typing({ afterMs: deps.config.TYPING_AFTER_MS, logger: this.#log });
  }

  /**
   * Hears completions (for {@link waitForProcessed}, whichever process answers) and, unless `claim` is
   * false (`ROLE=web`), starts the worker loop that claims and processes queued messages.
   */
  async start({ claim = true }: { claim?: boolean } = {}): Promise<void> {
    // Once: a web-only start followed by a full one (benchmarks drain what they queued) subscribes once.
    this.#unsubscribe ??= await this.#deps.store.bus.subscribe(PROCESSED_TOPIC, (payload) => {
      for (const resolve of this.#waiters.get(payload) ?? []) resolve();
    });
    if (claim) this.#loop ??= this.#run();
  }

  /** The adapter that sends for a conversation channel, if that channel is enabled. */
  adapterFor(channel: ChannelName): ChannelAdapter | undefined {
    return this.#deps.adapters.find((a) => a.channels.includes(channel));
  }

  /**
   * Stops claiming, waits up to `timeoutMs` for messages in flight, then aborts the rest and hands
   * their conversations back so another process takes them at once (SPEC §4.6).
   */
  async stop(timeoutMs: number): Promise<void> {
    this.#stopLoop.abort();
    await this.#loop;
    const idle = this.#queue.onIdle();
    const timedOut = await Promise.race([idle.then(() => false), sleep(timeoutMs).then(() => true)]);
    if (timedOut) {
      const held = [...this.#inFlight];
      this.#log.warn({ held: held.length }, 'shutdown timeout: handing back messages still in flight');
      for (const slot of held) {
        slot.handingBack = true;
        slot.lease.abort.abort(new LeaseLostError());
      }
      await idle;
      // The claim each slot held last: a completion already under way may have leased a next one.
      await Promise.all(held.map(({ claim }) => this.#deps.store.release(claim).catch(() => undefined)));
    }
    await this.#unsubscribe?.();
  }

  /**
   * Resolves when `messageId` has been processed (in any process) or after `timeoutMs`; true if
   * processed. Completion is announced only for messages accepted with `notify` (see
   * {@link AcceptInput.notify}), so the message must have been accepted that way.
   */
  async waitForProcessed(conversationId: string, messageId: string, timeoutMs: number): Promise<boolean> {
    const key = `${conversationId} ${messageId}`;
    let resolve!: () => void;
    const done = new Promise<void>((r) => {
      resolve = r;
    });
    const set = this.#waiters.get(key) ?? new Set();
    set.add(resolve);
    this.#waiters.set(key, set);
    try {
      // Subscribed first, checked second: a message processed in between is not missed.
      const current = await this.#deps.store.getMessage(conversationId, messageId);
      if (current && isFinished(current.processing)) return true;
      const timer = sleep(timeoutMs).then(() => false);
      return await Promise.race([done.then(() => true), timer]);
    } finally {
      set.delete(resolve);
      if (set.size === 0) this.#waiters.delete(key);
    }
  }

  /** Sends a message out through the conversation's channel (agent replies, proactive messages). */
  /**
   * Refuses, before anything is stored or taken, what {@link sendOutbound} would refuse for the
   * channel it would use: a free-form WhatsApp message outside the customer service window (422
   * `GW_ERR_WHATSAPP_WINDOW_CLOSED`), or a template for another channel or provider (400).
   */
  async assertSendable(
    conversation: Conversation,
    input: Pick<OutboundInput, 'channel' | 'template'>,
  ): Promise<void> {
    const via = throughThread(conversation, await this.#threadFor(conversation, input.channel));
    await this.#assertWindow(conversation, via.channel, input.template);
  }

  async #assertWindow(
    conversation: Conversation,
    channel: ChannelName,
    template: WhatsAppTemplate | undefined,
  ): Promise<void> {
    if (template) {
      const wanted = templateChannel(template);
      if (channel !== wanted) {
        throw new GatewayError(
          'GW_ERR_VALIDATION',
          `template: a ${wanted === 'whatsapp' ? 'Twilio Content API (contentSid)' : 'Cloud API (name, language)'} template cannot be sent on the ${channel} channel`,
          { errors: [{ field: 'template', message: `not a template for the ${channel} channel` }] },
        );
      }
      return;
    }
    if (!isWhatsApp(channel)) return;
    const last = await lastCustomerMessageAt(this.#deps.store, conversation, channel);
    if (!windowOpen(last)) throw windowClosed(last);
  }

  async sendOutbound(conversation: Conversation, input: OutboundInput): Promise<Message> {
    const thread = await this.#threadFor(conversation, input.channel);
    const via = throughThread(conversation, thread);
    const adapter = this.adapterFor(via.channel);
    if (!adapter) {
      throw new GatewayError(
        'GW_ERR_CHANNEL_UNAVAILABLE',
        `The ${via.channel} channel is not enabled on this gateway`,
      );
    }
    await this.#assertWindow(conversation, via.channel, input.template);
    const stored = await this.#deps.store.appendMessage(conversation.id, {
      type: input.type ?? 'bot',
      direction: 'outbound',
      ...thread,
      text: input.text,
      name: input.name,
      // A proactive bot message is the bot participant's, when the conversation names one.
      participantId:
        input.participantId ??
        (input.type === 'agent' ? undefined : conversation.participants.find((p) => p.role === 'bot')?.id),
      meta: input.template ? { ...input.meta, [TEMPLATE_META]: input.template } : input.meta,
      attachments: input.attachments,
      quickReplies: input.quickReplies,
      entities: detectEntities(input.text),
      // A channel without a transport has delivered the message once it is stored.
      delivery: { status: adapter.send ? 'pending' : 'sent', at: new Date().toISOString() },
    });
    if (!stored) throw new GatewayError('GW_ERR_NOT_FOUND', `Conversation ${conversation.id} not found`);
    if (!adapter.send) this.#deps.metrics.sent.inc({ channel: via.channel, outcome: 'sent' });
    await this.#deps.events.emit({
      type: 'message.created',
      conversationId: conversation.id,
      seq: stored.seq,
      message: stored,
    });
    return this.#deliver(via, stored, adapter);
  }

  /**
   * The channel thread an outbound message leaves by: in contact scope that of the customer's latest
   * message (on `channel`, when named), else the conversation's own; nothing in channel scope.
   */
  async #threadFor(
    conversation: Conversation,
    channel: ChannelName | undefined,
  ): Promise<Pick<Message, 'channel' | 'channelRef'>> {
    const routes = conversation.routes;
    if (!routes) {
      if (channel !== undefined && channel !== conversation.channel)
        throw new GatewayError(
          'GW_ERR_VALIDATION',
          `Conversation ${conversation.id} is reached only by ${conversation.channel}`,
          { field: 'channel' },
        );
      return {};
    }
    const recent = await this.#deps.store.listMessages(conversation.id, {
      take: 50,
      order: 'desc',
      type: 'user',
    });
    const latest = recent.items.find(
      (m) => m.direction === 'inbound' && m.channel && (channel === undefined || m.channel === channel),
    );
    if (latest?.channel && latest.channelRef !== undefined)
      return { channel: latest.channel, channelRef: latest.channelRef };
    const route = channel === undefined ? routes[0] : routes.findLast((r) => r.channel === channel);
    if (!route)
      throw new GatewayError(
        'GW_ERR_VALIDATION',
        `Conversation ${conversation.id} is not reached by ${channel}; it is reached by ${[...new Set(routes.map((r) => r.channel))].join(', ')}`,
        { field: 'channel' },
      );
    return { channel: route.channel, channelRef: route.channelRef };
  }

  // --- the worker loop ---------------------------------------------------------------------------

  async #run(): Promise<void> {
    const { store, config } = this.#deps;
    const stop = this.#stopLoop.signal;
    let failures = 0;
    while (!stop.aborted) {
      const free = config.WORKER_CONCURRENCY - this.#inFlight.size;
      if (free <= 0) {
        // Wait for a slot; remove both listeners afterwards so a long run does not pile them up.
        await new Promise<void>((resolve) => {
          const done = () => {
            this.#queue.off('next', done);
            stop.removeEventListener('abort', done);
            resolve();
          };
          this.#queue.once('next', done);
          stop.addEventListener('abort', done, { once: true });
        });
        continue;
      }
      let claims: Claim[];
      try {
        claims = await store.claim(this.owner, free, config.LEASE_MS);
        if (this.#storeDown) this.#log.info('store reachable again: claiming resumed');
        this.#storeDown = false;
        failures = 0;
      } catch (err) {
        failures += 1;
        if (!this.#storeDown)
          this.#log.error({ err }, 'claim failed: store unreachable, retrying with backoff');
        this.#storeDown = true;
        await sleep(Math.min(2_000, 100 * 2 ** Math.min(failures, 5)), stop).catch(() => undefined);
        continue;
      }
      if (claims.length === 0) {
        await store
          .waitForWork(Math.min(MAX_IDLE_WAIT_MS, Math.max(50, config.LEASE_MS / 4)), stop)
          .catch(() => sleep(200, stop).catch(() => undefined));
        continue;
      }
      for (const claim of claims) {
        const slot: Slot = { claim, lease: this.#hold(claim), handingBack: false };
        this.#inFlight.add(slot);
        void this.#queue.add(() => this.#handle(slot));
      }
    }
  }

  /**
   * Works one slot: the claimed message, then (up to {@link MAX_CONSECUTIVE} in a row, and not while
   * stopping) the conversation's next ones, each leased by the completion of the one before.
   */
  async #handle(slot: Slot): Promise<void> {
    const { store, config } = this.#deps;
    try {
      for (let handled = 1; ; handled++) {
        // Each claim has its own heartbeat, renewing its own token and aborting its own signal: once
        // its completion has leased the next message, nothing it still learns can touch that one.
        const { claim, lease } = slot;
        const { signal } = lease.abort;
        const log = lazyChild(this.#log, {
          conversationId: claim.conversationId,
          messageId: claim.message.id,
        });
        let processed: Processed | null;
        try {
          processed = await (tracingOn()
            ? this.#traced(claim, signal, log)
            : this.#process(claim, signal, log));
        } catch (err) {
          lease.end();
          if (signal.aborted) {
            log.warn('lease lost or shutdown while processing; message left for redelivery');
            return;
          }
          log.error({ err }, 'processing failed; the message is redelivered after the lease');
          this.#deps.metrics.processed.inc({ outcome: 'crashed' });
          return;
        }
        if (processed === null || signal.aborted) {
          lease.end();
          log.warn('lease lost or shutdown while processing; message left for redelivery');
          return;
        }
        const goOn = handled < MAX_CONSECUTIVE && !this.#stopLoop.signal.aborted;
        // The heartbeat runs on through the completion (it may outlast a lease), then stops for good:
        // an answer it gets after this, for a token the completion has retired, means nothing.
        const done = await store
          .complete(
            claim,
            processed.outcome,
            goOn ? { owner: this.owner, leaseMs: config.LEASE_MS } : undefined,
            processed.record,
          )
          .catch((err: unknown) => {
            log.error({ err }, 'completing failed; the message is redelivered after the lease');
            return null;
          })
          .finally(() => lease.end());
        if (!done) return;
        if (!done.completed) {
          log.warn('lease lost before completion; the new owner finishes this message');
          return;
        }
        if (done.next) {
          // Held from here on, so a shutdown hands back the next message rather than the finished one.
          slot.claim = done.next;
          slot.lease = this.#hold(done.next);
        }
        if (done.repliesRecorded) await this.#announce(claim.conversationId, done.replies ?? []);
        if (done.notify) {
          await store.bus
            .publish(PROCESSED_TOPIC, `${claim.conversationId} ${claim.message.id}`)
            .catch(() => undefined);
        }
        if (!done.next) return;
        if (slot.handingBack) return;
      }
    } finally {
      slot.lease.end();
      this.#inFlight.delete(slot);
    }
  }

  /**
   * The lease of `claim`, renewed from now on every third of the lease time until it ends, and aborted
   * when the store answers that this claim's token no longer holds it.
   */
  #hold(claim: Claim): Lease {
    const { store, config } = this.#deps;
    const lease = new Lease(claim);
    const timer = setInterval(
      () => {
        if (lease.ended) return;
        store
          .heartbeat(lease.claim, config.LEASE_MS)
          .then((ok) => {
            if (!ok && !lease.ended) lease.abort.abort(new LeaseLostError());
          })
          // A failed heartbeat (store briefly unreachable) is not a lost lease; completion is fenced anyway.
          .catch(() => undefined);
      },
      Math.max(50, Math.floor(config.LEASE_MS / 3)),
    );
    lease.stop = () => clearInterval(timer);
    return lease;
  }

  /**
   * {@link #process} in the message's trace (SPEC §12): `queue.wait` from the accept to this claim,
   * then `process`, both children of the accept's span as the message carries it, whichever process
   * accepted it.
   */
  #traced(claim: Claim, signal: AbortSignal, log: MessageLog): Promise<Processed | null> {
    const { message } = claim;
    const parent = contextOf(message.traceparent);
    const attributes = {
      'switchboard.conversation.id': claim.conversationId,
      'switchboard.message.id': message.id,
      'switchboard.deliveries': claim.deliveries,
    };
    if (claim.deliveries === 1 && message.traceparent) {
      recordSpan('queue.wait', { parent, attributes, startTime: Date.parse(message.createdAt) });
    }
    return inSpan('process', { parent, attributes }, () => this.#process(claim, signal, log));
  }

  /**
   * Runs one claimed message to its outcome (bot, replies, sends), or null when the lease was lost or
   * the engine is stopping and the message is left for redelivery. Its typing indicator ends however
   * that goes (src/typing/).
   */
  async #process(claim: Claim, signal: AbortSignal, log: MessageLog): Promise<Processed | null> {
    const typing = this.#typing.slot();
    try {
      return await this.#processMessage(claim, signal, log, typing);
    } finally {
      typing.end();
    }
  }

  async #processMessage(
    claim: Claim,
    signal: AbortSignal,
    log: MessageLog,
    typing: TypingSlot,
  ): Promise<Processed | null> {
    const { store, metrics, handoff } = this.#deps;
    const message = claim.message;
    let conversation = claim.conversation;
    // Contact scope: the reply leaves through the channel thread of the message it answers.
    const adapter = this.adapterFor(throughThread(conversation, message).channel);
    const attempts = message.processing?.attempts ?? claim.deliveries;
    // Queue lag: from the accept to the first claim (a redelivery would time the crash, not the queue).
    if (claim.deliveries === 1 && message.direction === 'inbound')
      metrics.queueWait.observe(
        { channel: conversation.channel },
        Math.max(0, Date.now() - Date.parse(message.createdAt)) / 1000,
      );

    if (claim.deliveries > MAX_DELIVERIES && !message.processing?.replyIds) {
      log.error({ deliveries: claim.deliveries }, 'message set aside after repeated crashes');
      metrics.processed.inc({ outcome: 'poison' });
      return {
        outcome: {
          state: 'error',
          attempts,
          error: { code: 'GW_POISON_MESSAGE', message: `Processing crashed ${claim.deliveries - 1} times` },
        },
      };
    }

    let replies: Message[];
    let outcome: ProcessingOutcome;
    if (message.processing?.replyIds && message.processing.replyIds.length > 0) {
      // Redelivery after the replies were recorded: send what is still unsent, never ask the bot again.
      replies = await this.#loadReplies(conversation.id, message.processing.replyIds);
      outcome = message.processing.error
        ? { state: 'error', attempts, error: message.processing.error }
        : { state: 'done', attempts };
    } else if (message.type !== 'user') {
      return { outcome: { state: 'skipped', attempts } };
    } else if (handoff.isMuted(conversation, message)) {
      // Decided on the conversation as the claim read it, in the claim's own atomic step (SPEC §8).
      metrics.processed.inc({ outcome: 'handoff' });
      return { outcome: mutedOutcome(attempts) };
    } else if (handoff.asksForHuman(message)) {
      await handoff.request(conversation.id, { reason: CUSTOMER_REQUEST, requestedBy: 'customer' });
      metrics.processed.inc({ outcome: 'handoff' });
      return { outcome: mutedOutcome(attempts) };
    } else {
      if (conversation.status === 'closed') {
        // A customer writing into a closed conversation reopens it, as help desks do.
        conversation = await this.#setStatus(conversation, 'open', message.seq);
      }
      typing.start(adapter, throughThread(conversation, message), message);
      const result = await this.#askBot(throughThread(conversation, message), message, signal, log);
      if (signal.aborted) return null;
      outcome = result.error
        ? { state: 'error', attempts, error: result.error }
        : { state: 'done', attempts };
      const storing = adapter !== undefined && !adapter.send;
      // The bot's replies are the bot participant's, when the conversation names one.
      const botId = conversation.participants.find((p) => p.role === 'bot')?.id;
      const thread = message.channel ? { channel: message.channel, channelRef: message.channelRef } : {};
      // While tracing is on, the replies belong to this processing's trace (their webhooks carry it).
      const traceparent = currentTraceparent();
      const drafts = result.replies.map((r) => ({
        ...replyMessage(message.id, r.text, r, result.fallback, storing ? 'sent' : 'pending', botId),
        ...thread,
        ...(traceparent ? { traceparent } : {}),
      }));
      const { sessionState } = result.response ?? {};
      const enter = handoff.entryAfterBot(
        result.response,
        result.error !== undefined,
        this.#botCircuitOpen(),
      );
      if (storing && !sessionState && !enter) {
        // Storing is delivering on this channel: the replies are recorded by the completion itself.
        // Not when the conversation changes too: the replies are recorded before that change, as
        // below, so a crash in between cannot leave a handed-off conversation without its reply,
        // and the completion's lease on the next message reads the conversation as changed.
        const via = throughThread(conversation, message);
        typing.end();
        if (drafts.length > 0) metrics.sent.inc({ channel: via.channel, outcome: 'sent' }, drafts.length);
        metrics.processed.inc({ outcome: outcome.state });
        return { outcome, record: drafts };
      }
      // No replies, nothing to record: a redelivery of this message asks the bot again, which is
      // harmless since no customer-visible reply exists (and a store call per message cheaper).
      replies = drafts.length === 0 ? [] : await store.recordReplies(conversation.id, message.id, drafts);
      await this.#announce(conversation.id, replies);
      if (sessionState) await store.updateConversation(conversation.id, { sessionState });
      if (enter) conversation = (await handoff.request(conversation.id, enter)) ?? conversation;
    }

    const via = throughThread(conversation, message);
    // No indicator may reach the channel after the reply: what is scheduled is cancelled, and one
    // under way is waited for.
    await typing.settle();
    try {
      for (const reply of replies) {
        if (signal.aborted) return null;
        await this.#deliver(via, reply, adapter);
      }
    } finally {
      typing.end();
    }
    metrics.processed.inc({ outcome: outcome.state });
    return { outcome };
  }

  /** True while the bot's circuit breaker is open. */
  #botCircuitOpen(): boolean {
    return this.#deps.bot.circuitOpen?.() ?? false;
  }

  /** Announces replies just recorded, in order. */
  async #announce(conversationId: string, replies: readonly Message[]): Promise<void> {
    for (const reply of replies) {
      await this.#deps.events.emit({
        type: 'message.created',
        conversationId,
        seq: reply.seq,
        message: reply,
      });
    }
  }

  async #askBot(
    conversation: Conversation,
    message: Message,
    signal: AbortSignal,
    log: MessageLog,
  ): Promise<{
    replies: BotResponse['replies'];
    response?: BotResponse;
    error?: { code: string; message: string };
    fallback: boolean;
  }> {
    const { bot, store, config, metrics, handoff, botSettings } = this.#deps;
    const settings = botSettings?.current ?? {
      historyLimit: DEFAULT_HISTORY_LIMIT,
      fallbackText: config.BOT_FALLBACK_TEXT,
    };
    const history =
      bot.kind === 'demo'
        ? [message]
        : (await store.listMessages(conversation.id, { take: settings.historyLimit, order: 'desc' })).items
            .filter((m) => m.seq <= message.seq)
            .reverse();
    const contact = await this.#deps.contacts?.forBot(conversation);
    const started = performance.now();
    try {
      const response = await this.#callBot(
        {
          conversation,
          ...(contact ? { contact } : {}),
          message,
          session: {
            id: conversation.sessionId,
            startedAt: conversation.sessionStartedAt,
            state: conversation.sessionState,
          },
          history,
          ...(handoff.isResumed(conversation) ? { resumed: true } : {}),
        },
        signal,
      );
      metrics.botLatency.observe((performance.now() - started) / 1000);
      // Not clearing the marker only flags the next request `resumed` too: not worth failing the reply.
      await handoff
        .resumed(conversation)
        .catch((err: unknown) => log.warn({ err }, 'handoff resume marker not cleared'));
      metrics.botRequests.inc({ outcome: 'ok' });
      return { replies: response.replies, response, fallback: false };
    } catch (err) {
      if (signal.aborted) throw err;
      const error =
        err instanceof BotError
          ? { code: err.code, message: err.message }
          : { code: 'BOT_FAILED', message: (err as Error).message };
      metrics.botRequests.inc({ outcome: error.code === 'BOT_CIRCUIT_OPEN' ? 'breaker_open' : 'error' });
      log.warn({ code: error.code, reason: error.message }, 'bot failed; sending the fallback reply');
      return { replies: [{ text: settings.fallbackText }], error, fallback: true };
    }
  }

  /** `bot.reply`, in a `bot.call` client span while tracing is on (the HTTP bot sends its `traceparent`). */
  #callBot(request: Parameters<Bot['reply']>[0], signal: AbortSignal): Promise<BotResponse> {
    const { bot } = this.#deps;
    if (!tracingOn()) return bot.reply(request, signal);
    return inSpan(
      'bot.call',
      { kind: SpanKind.CLIENT, attributes: { 'switchboard.bot.kind': bot.kind } },
      () => bot.reply(request, signal),
    );
  }

  /**
   * Hands one stored outbound message to its channel, at most once, and records the outcome (with the
   * provider's id, in the same store step). Returns the message as stored afterwards.
   */
  async #deliver(
    conversation: Conversation,
    message: Message,
    adapter: ChannelAdapter | undefined,
  ): Promise<Message> {
    const { store, delivery, metrics } = this.#deps;
    if (message.delivery?.status !== 'pending') return message;
    // The message as the caller has it spares the store reading it back before each step.
    const known = { known: message };
    const fail = async (error: { code: string; message: string }) =>
      (await delivery.apply(conversation.id, message.id, 'failed', error, known)).message ?? message;
    if (!adapter) {
      return fail({
        code: 'GW_CHANNEL_UNAVAILABLE',
        message: `The ${conversation.channel} channel is not enabled on this gateway`,
      });
    }
    if (!adapter.send) {
      // A channel without a transport: stored is delivered.
      return (await delivery.apply(conversation.id, message.id, 'sent', undefined, known)).message ?? message;
    }
    // A reply that comes due after the customer's window closed (a slow bot, a queued retry) fails
    // with that reason rather than the provider's refusal.
    if (isWhatsApp(conversation.channel) && !templateOf(message)) {
      const last = await lastCustomerMessageAt(store, conversation, conversation.channel);
      if (!windowOpen(last)) {
        const closed = windowClosed(last);
        return fail({ code: closed.code, message: closed.message });
      }
    }
    if (!(await store.claimSend(conversation.id, message.id))) {
      // Another attempt claimed this send and died before recording its outcome: never send twice.
      return fail({
        code: 'GW_SEND_INTERRUPTED',
        message: 'A previous attempt to send this message was interrupted; its outcome is unknown',
      });
    }
    try {
      const result = await (tracingOn()
        ? this.#tracedSend(conversation, message, adapter as SendingAdapter)
        : this.#send(conversation, message, adapter as SendingAdapter));
      const applied = await delivery.apply(conversation.id, message.id, result.status, undefined, {
        externalId: result.externalId || undefined,
        known: message,
      });
      metrics.sent.inc({ channel: conversation.channel, outcome: 'sent' });
      return applied.message ?? message;
    } catch (err) {
      const code = err instanceof PermanentSendError ? err.code : undefined;
      this.#log.warn(
        { conversationId: conversation.id, messageId: message.id, code, reason: (err as Error).message },
        'send failed',
      );
      const failed = await fail({ code: code ?? 'GW_SEND_FAILED', message: (err as Error).message });
      metrics.sent.inc({ channel: conversation.channel, outcome: 'failed' });
      return failed;
    }
  }

  /**
   * The provider call for one reply, timed, and its provider id remembered (inside the send's span
   * while tracing is on, so the status callbacks link to that span).
   */
  async #send(conversation: Conversation, message: Message, adapter: SendingAdapter): Promise<SendResult> {
    const { delivery, metrics } = this.#deps;
    const started = performance.now();
    // As the channel can render it: quick replies written out where it has no buttons.
    const result = await adapter.send(conversation, forChannel(conversation.channel, message));
    metrics.sendDuration.observe({ channel: conversation.channel }, (performance.now() - started) / 1000);
    if (result.externalId && !result.remembered) {
      await delivery.remember(conversation.channel, result.externalId, conversation.id, message.id);
    }
    return result;
  }

  /** {@link #send} in a `send <channel>` producer span (SPEC §12). */
  #tracedSend(conversation: Conversation, message: Message, adapter: SendingAdapter): Promise<SendResult> {
    return inSpan(
      `send ${conversation.channel}`,
      {
        kind: SpanKind.PRODUCER,
        attributes: {
          'messaging.system': conversation.channel,
          'messaging.operation.type': 'send',
          'messaging.message.id': message.id,
          'switchboard.conversation.id': conversation.id,
        },
      },
      async (span) => {
        const result = await this.#send(conversation, message, adapter);
        if (result.externalId) span?.setAttribute('switchboard.external_id', result.externalId);
        return result;
      },
    );
  }

  /** Moves the conversation to `status` and announces it; the conversation as it now is. */
  async #setStatus(
    conversation: Conversation,
    status: ConversationStatus,
    seq: number,
  ): Promise<Conversation> {
    const updated = await this.#deps.store.updateConversation(conversation.id, { status });
    if (!updated) return conversation;
    await this.#deps.events.emit({
      type: 'conversation.updated',
      conversationId: updated.id,
      seq,
      conversation: updated,
      changes: ['status'],
    });
    return updated;
  }

  async #loadReplies(conversationId: string, ids: string[]): Promise<Message[]> {
    const loaded = await Promise.all(ids.map((id) => this.#deps.store.getMessage(conversationId, id)));
    return loaded.filter((m): m is Message => m !== null);
  }
}

function isFinished(p: Processing | undefined): boolean {
  return p !== undefined && p.state !== 'queued' && p.state !== 'processing';
}

/** A message the bot is not asked about because humans have the conversation. */
function mutedOutcome(attempts: number): ProcessingOutcome {
  return {
    state: 'skipped',
    attempts,
    error: {
      code: 'GW_HANDOFF',
      message: 'The conversation is handed off to a human; the bot was not called',
    },
  };
}

function replyMessage(
  replyTo: string,
  text: string,
  r: { attachments?: Attachment[]; quickReplies?: QuickReply[]; meta?: Meta },
  fallback: boolean,
  status: 'pending' | 'sent',
  participantId?: string,
): NewMessage {
  return {
    type: 'bot',
    direction: 'outbound',
    text,
    replyTo,
    ...(participantId !== undefined ? { participantId } : {}),
    attachments: r.attachments,
    quickReplies: r.quickReplies,
    meta: fallback ? { ...r.meta, fallback: true } : r.meta,
    entities: detectEntities(text),
    delivery: { status, at: new Date().toISOString() },
  };
}

/** The refusal of a free-form WhatsApp message outside the customer service window. */
function windowClosed(last: number | null): GatewayError {
  return new GatewayError(
    'GW_ERR_WHATSAPP_WINDOW_CLOSED',
    last === null
      ? 'The customer has not written on WhatsApp in this conversation: only a template can be sent'
      : `The customer last wrote on WhatsApp at ${new Date(last).toISOString()}, more than 24 hours ago: only a template can be sent`,
  );
}
