/**
 * @module Typing while queued: the customer's channel shows that an answer is being worked on when the
 * bot has not answered within `TYPING_AFTER_MS` of the message's acceptance, on channels that have a
 * way to show it (src/channels/capabilities.ts: web chat, WhatsApp through Twilio or the Cloud API,
 * Slack assistant threads), and never elsewhere.
 *
 * Where the timer lives: in the engine process that claims the message, measured from the message's
 * `createdAt` (its acceptance, whichever process accepted it). A message that waited in its
 * conversation's queue behind others longer than `TYPING_AFTER_MS` gets its indicator at once when its
 * turn comes (while it waited, the indicator of the message ahead covered the conversation). Keeping the
 * timer beside the reply is what lets the order be guaranteed: before the first reply leaves,
 * {@link TypingSlot.settle} cancels what is scheduled and waits for an indicator request already under
 * way, so no indicator is ever sent after the reply. A message that no engine has claimed yet (every
 * worker slot busy, or no worker running) shows nothing until it is claimed.
 *
 * The indicator always ends: on the reply (WhatsApp dismisses it itself; web chat and Slack get the
 * `off` signal), on failure (the same `off`, whether the bot or the send failed), and by its own expiry:
 * renewals for channels that drop an indicator by themselves stop after {@link MAX_TYPING_MS}. A
 * message the bot is not asked about (handed off to humans, skipped) never starts one, as Meta asks.
 */
import type { Logger } from 'pino';
import { capabilitiesOf } from '../channels/capabilities.js';
import type { ChannelAdapter } from '../core/channel.js';
import type { Conversation, Message } from '../core/model.js';

/** Longest an indicator is kept up by renewals: a bot slower than this is not "typing" any more. */
export const MAX_TYPING_MS = 120_000;
/**
 * Longest a reply waits for an indicator request under way. The adapters' own timeouts are shorter
 * (3 s for Twilio and Slack); this bounds a provider client that waits longer, at the price that an
 * indicator held up more than this by its provider could land after the reply.
 */
export const SETTLE_WAIT_MS = 3_000;

export interface TypingOptions {
  /** `TYPING_AFTER_MS`: how long after acceptance an unanswered message shows the indicator; 0 = at once. */
  afterMs: number;
  logger: Logger;
  /** @default {@link MAX_TYPING_MS} */
  maxMs?: number;
  now?: () => number;
}

/** Makes the typing slots of the messages an engine works on. */
export class Typing {
  readonly #opts: Required<TypingOptions>;

  constructor(opts: TypingOptions) {
    this.#opts = { maxMs: MAX_TYPING_MS, now: Date.now, ...opts };
  }

  /** A slot for one claimed message: nothing shows until {@link TypingSlot.start}. */
  slot(): TypingSlot {
    return new TypingSlot(this.#opts);
  }
}

type Target = {
  adapter: ChannelAdapter & Required<Pick<ChannelAdapter, 'signal'>>;
  conversation: Conversation;
  message: Message;
};

/** The typing indicator of one message: scheduled, shown and renewed, then settled and ended. */
export class TypingSlot {
  readonly #opts: Required<TypingOptions>;
  #target: Target | undefined;
  #timer: NodeJS.Timeout | undefined;
  /** The indicator request under way, if any. */
  #inFlight: Promise<void> = Promise.resolve();
  #firstShownAt: number | undefined;
  #settled = false;

  constructor(opts: Required<TypingOptions>) {
    this.#opts = opts;
  }

  /**
   * Arms the indicator for `message`, an answer to which is about to be asked for: shown once
   * `TYPING_AFTER_MS` have passed since its acceptance (at once if they already have), where the
   * channel has typing and the adapter signals.
   */
  start(adapter: ChannelAdapter | undefined, conversation: Conversation, message: Message): void {
    if (this.#target || this.#settled || !adapter?.signal) return;
    if (!capabilitiesOf(conversation.channel).typing.value) return;
    this.#target = { adapter: adapter as Target['adapter'], conversation, message };
    const due = Date.parse(message.createdAt) + this.#opts.afterMs - this.#opts.now();
    if (this.#opts.afterMs === 0 || due <= 0) this.#show();
    else this.#schedule(due);
  }

  /** Whether the indicator has been shown. */
  get shown(): boolean {
    return this.#firstShownAt !== undefined;
  }

  /**
   * Before a reply leaves: nothing is shown or renewed from now on, and the returned promise resolves
   * once an indicator request already under way has finished, so none reaches the channel after it.
   */
  settle(): Promise<void> {
    this.#settled = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    // Most messages are answered before their indicator is due: nothing under way, nothing to wait for.
    if (this.#firstShownAt === undefined) return Promise.resolve();
    let bound: NodeJS.Timeout | undefined;
    const cap = new Promise<void>((resolve) => {
      bound = setTimeout(resolve, SETTLE_WAIT_MS);
    });
    return Promise.race([this.#inFlight, cap]).finally(() => clearTimeout(bound));
  }

  /** After the reply, or when there is none: settles, and clears a shown indicator where it clears. */
  end(): void {
    if (!this.#settled) void this.settle();
    const target = this.#target;
    if (!target || this.#firstShownAt === undefined) return;
    this.#target = undefined;
    this.#call(target, false);
  }

  #schedule(ms: number): void {
    this.#timer = setTimeout(() => this.#show(), ms);
    this.#timer.unref?.();
  }

  #show(): void {
    const target = this.#target;
    if (this.#settled || !target) return;
    const now = this.#opts.now();
    this.#firstShownAt ??= now;
    const previous = this.#inFlight;
    this.#inFlight = previous.then(() => (this.#settled ? undefined : this.#call(target, true)));
    const renewMs = capabilitiesOf(target.conversation.channel).typing.renewMs;
    if (renewMs !== undefined && now + renewMs - this.#firstShownAt <= this.#opts.maxMs) {
      this.#schedule(renewMs);
    }
  }

  /** One signal to the adapter; its failure is the adapter's to log (best effort, never retried). */
  #call(target: Target, on: boolean): Promise<void> {
    const { adapter, conversation, message } = target;
    try {
      return Promise.resolve(
        adapter.signal(conversation, {
          type: 'typing',
          on,
          about: { id: message.id, externalId: message.externalId, meta: message.meta },
        }),
      ).catch((err: unknown) => {
        this.#opts.logger.debug(
          { conversationId: conversation.id, reason: (err as Error).message },
          'typing indicator not signalled',
        );
      });
    } catch (err) {
      this.#opts.logger.debug(
        { conversationId: conversation.id, reason: (err as Error).message },
        'typing indicator not signalled',
      );
      return Promise.resolve();
    }
  }
}
