/**
 * @module The handoff service (SPEC §8): the one place that changes a conversation's handoff. Each
 * change is one atomic store step ({@link HandoffRepo}); the caller that made it, and only that one,
 * announces it, so racing requests from any number of processes give one transition and one event.
 * It also answers the engine's questions (is the bot muted for this message, did the customer ask
 * for a human) and runs the idle release timer poll.
 */
import type { Logger } from 'pino';
import { GatewayError } from '../core/errors.js';
import type { EventHub } from '../core/events.js';
import type { Conversation, ConversationStatus, HandoffRequester, Message } from '../core/model.js';
import type { Store } from '../core/store.js';
import { keywordMatcher } from './keywords.js';
import {
  AGENT_REQUEST,
  BOT_REQUEST,
  BOT_UNAVAILABLE,
  type HandoffCommand,
  type HandoffEventType,
  isBotMuted,
} from './machine.js';
import type { HandoffRepo } from './repo.js';

/** The handoff settings (HANDOFF_KEYWORDS, HANDOFF_ON_BOT_FAILURE, HANDOFF_IDLE_RELEASE_S). */
export interface HandoffSettings {
  keywords: readonly string[];
  onBotFailure: boolean;
  /** 0 = never. */
  idleReleaseS: number;
  /** How often every process looks for due idle releases. @default 1000 */
  pollMs?: number;
}

/**
 * The settings as given: fixed, or read at each use (the bot configuration of SPEC §10 changes them
 * while running).
 */
export type HandoffSettingsSource = HandoffSettings | (() => HandoffSettings);

/** A claimed idle timer is retried this much later when its claimer died before releasing. */
const DUE_RETRY_MS = 30_000;
/** Timers claimed per poll. */
const DUE_BATCH = 100;

export interface HandoffDeps {
  repo: HandoffRepo;
  store: Store;
  events: EventHub;
  logger: Logger;
  settings: HandoffSettingsSource;
}

export function notInHandoff(id: string): GatewayError {
  return new GatewayError('GW_ERR_NOT_IN_HANDOFF', `Conversation ${id} is not in handoff`);
}

export class HandoffService {
  readonly #deps: HandoffDeps;
  readonly #log: Logger;
  /** The keyword matcher, made again when the keywords change. */
  #matcher: { keywords: readonly string[]; matches: ((text: string) => boolean) | null } | null = null;
  #timer: NodeJS.Timeout | null = null;
  #polling: Promise<unknown> | null = null;

  constructor(deps: HandoffDeps) {
    this.#deps = deps;
    this.#log = deps.logger.child({ component: 'handoff' });
  }

  /** The settings in force now. */
  get settings(): HandoffSettings {
    const { settings } = this.#deps;
    return typeof settings === 'function' ? settings() : settings;
  }

  get #matches(): ((text: string) => boolean) | null {
    const { keywords } = this.settings;
    if (this.#matcher?.keywords !== keywords) this.#matcher = { keywords, matches: keywordMatcher(keywords) };
    return this.#matcher.matches;
  }

  // --- transitions ---------------------------------------------------------------------------------

  /** Puts the conversation in handoff (idempotent); null when it does not exist. */
  request(
    conversationId: string,
    input: { reason: string; requestedBy: HandoffRequester; assignee?: string },
  ): Promise<Conversation | null> {
    return this.#apply(conversationId, {
      type: 'request',
      ...input,
      at: new Date().toISOString(),
      idleReleaseS: this.settings.idleReleaseS,
    });
  }

  /** Assigns the handoff to an agent participant, entering it first when the conversation is open. */
  assign(conversationId: string, assignee: string): Promise<Conversation | null> {
    return this.#apply(conversationId, {
      type: 'assign',
      assignee,
      at: new Date().toISOString(),
      idleReleaseS: this.settings.idleReleaseS,
    });
  }

  /** Gives the conversation back to the bot; throws `not_in_handoff` when it is not in handoff. */
  release(conversationId: string): Promise<Conversation | null> {
    return this.#apply(conversationId, { type: 'release', at: new Date().toISOString() });
  }

  /** Closes the conversation, ending its handoff if it has one. */
  close(conversationId: string): Promise<Conversation | null> {
    return this.#apply(conversationId, { type: 'close', at: new Date().toISOString() });
  }

  /**
   * A message went out to the customer of a conversation in handoff (an agent answering): the idle
   * release timer starts again. No event: the handoff's state is unchanged.
   */
  async agentActed(conversationId: string): Promise<void> {
    if (this.settings.idleReleaseS <= 0) return;
    await this.#deps.repo.apply(conversationId, {
      type: 'touch',
      at: new Date().toISOString(),
      idleReleaseS: this.settings.idleReleaseS,
    });
  }

  /**
   * A status change asked for through `PATCH /v1/conversations/:id`, made the way the handoff state
   * machine makes it (SPEC §8): `handoff` requests one (by an agent), `closed` ends any handoff, and
   * `open` releases a conversation in handoff (or reopens a closed one). Announces the handoff events
   * only: the caller announces the conversation update. Null when the conversation does not exist.
   */
  async setStatus(conversationId: string, status: ConversationStatus): Promise<Conversation | null> {
    const at = new Date().toISOString();
    const command: HandoffCommand | null =
      status === 'handoff'
        ? {
            type: 'request',
            reason: AGENT_REQUEST,
            requestedBy: 'agent',
            at,
            idleReleaseS: this.settings.idleReleaseS,
          }
        : status === 'closed'
          ? { type: 'close', at }
          : null;
    if (command) return this.#apply(conversationId, command, false);
    const result = await this.#deps.repo.apply(conversationId, { type: 'release', at });
    if (result.kind === 'missing') return null;
    if (result.kind === 'applied') {
      await this.#announce(result.conversation, result.events, false);
      return result.conversation;
    }
    return this.#deps.store.updateConversation(conversationId, { status });
  }

  /**
   * A change of the conversation's record besides its handoff (participants), made with the same
   * atomic guard as the transitions (see {@link HandoffRepo.change}); no event is emitted here.
   */
  change(
    conversationId: string,
    change: (current: Conversation) => Conversation | null,
  ): ReturnType<HandoffRepo['change']> {
    return this.#deps.repo.change(conversationId, change);
  }

  // --- what the engine asks ----------------------------------------------------------------------

  /** True when the bot must not be asked about this claimed message (see {@link isBotMuted}). */
  isMuted(conversation: Conversation, message: Message): boolean {
    return isBotMuted(conversation, message.seq);
  }

  /** True when the customer's text asks for a human (HANDOFF_KEYWORDS). */
  asksForHuman(message: Message): boolean {
    return message.type === 'user' && this.#matches !== null && this.#matches(message.text);
  }

  /** True when the bot request for this conversation is the first since a handoff ended. */
  isResumed(conversation: Conversation): boolean {
    return conversation.handoffResume !== undefined;
  }

  /** The bot was asked again after a handoff: the next request is no longer `resumed`. */
  async resumed(conversation: Conversation): Promise<void> {
    if (!conversation.handoffResume) return;
    await this.#deps.repo.apply(conversation.id, {
      type: 'resumed',
      afterSeq: conversation.handoffResume.afterSeq,
    });
  }

  /**
   * The handoff a bot call leads to, if any: the bot answered `handoff: true`, or it failed with its
   * breaker open while HANDOFF_ON_BOT_FAILURE is on (the customer has the fallback reply, once).
   */
  entryAfterBot(
    response: { handoff?: boolean; handoffReason?: string } | undefined,
    failed: boolean,
    breakerOpen: boolean,
  ): { reason: string; requestedBy: HandoffRequester } | null {
    if (response?.handoff) return { reason: response.handoffReason ?? BOT_REQUEST, requestedBy: 'bot' };
    if (failed && breakerOpen && this.settings.onBotFailure)
      return { reason: BOT_UNAVAILABLE, requestedBy: 'system' };
    return null;
  }

  // --- the idle release timer --------------------------------------------------------------------

  /**
   * Starts polling for due idle releases (every process polls; each release happens once). With fixed
   * settings and no idle release there is nothing to poll for; settings that can change are polled
   * for always, since an idle release may be configured at any time.
   */
  start(): void {
    if (this.#timer) return;
    if (typeof this.#deps.settings !== 'function' && this.settings.idleReleaseS <= 0) return;
    this.#timer = setInterval(() => {
      // 0 = never, from the moment it is set: timers already set wait until idle release is back on.
      if (this.settings.idleReleaseS <= 0) return;
      this.#polling ??= this.pollDue()
        .catch((err: unknown) => this.#log.warn({ err }, 'idle release poll failed; retrying'))
        .finally(() => {
          this.#polling = null;
        });
    }, this.settings.pollMs ?? 1_000);
    this.#timer.unref();
  }

  /** Stops polling and waits for a poll under way (shutdown: before the event sinks stop). */
  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    await this.#polling;
  }

  /** Closes the store connection, once nothing (the engine included) can make a transition any more. */
  async dispose(): Promise<void> {
    await this.stop();
    await this.#deps.repo.close();
  }

  /** Releases every conversation whose idle release is due; returns how many were released. */
  async pollDue(): Promise<number> {
    let released = 0;
    for (const id of await this.#deps.repo.claimDue(DUE_BATCH, DUE_RETRY_MS)) {
      const result = await this.#deps.repo.apply(id, { type: 'idle', at: new Date().toISOString() });
      if (result.kind === 'missing') await this.#deps.repo.forget(id);
      else if (result.kind === 'applied' && result.changed && result.events.length > 0) {
        released += 1;
        this.#log.info({ conversationId: id }, 'handoff released after the idle time');
        await this.#announce(result.conversation, result.events);
      }
    }
    return released;
  }

  // --- internals ---------------------------------------------------------------------------------

  async #apply(
    conversationId: string,
    command: HandoffCommand,
    updated = true,
  ): Promise<Conversation | null> {
    const result = await this.#deps.repo.apply(conversationId, command);
    if (result.kind === 'missing') return null;
    if (result.kind === 'refused') throw notInHandoff(conversationId);
    if (result.changed) await this.#announce(result.conversation, result.events, updated);
    return result.conversation;
  }

  /**
   * Emits the step's events, after the `conversation.updated` its status change is (unless the
   * caller announces that itself).
   */
  async #announce(
    conversation: Conversation,
    types: readonly HandoffEventType[],
    updated = true,
  ): Promise<void> {
    const { events, store } = this.#deps;
    const seq =
      conversation.handoffResume && types.includes('conversation.handoff_released')
        ? conversation.handoffResume.afterSeq
        : ((await store.listMessages(conversation.id, { take: 1, order: 'desc' })).items[0]?.seq ?? 0);
    if (updated) {
      await events.emit({
        type: 'conversation.updated',
        conversationId: conversation.id,
        seq,
        conversation,
        changes: ['status', 'handoff'],
      });
    }
    for (const type of types) {
      await events.emit({
        type,
        conversationId: conversation.id,
        seq,
        conversation,
      });
    }
  }
}
