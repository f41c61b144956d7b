/**
 * @module Typing indicators on the Cloud API (CHANNELS.md "Typing indicators on WhatsApp"; Meta
 * "Typing indicators", https://developers.facebook.com/documentation/business-messaging/whatsapp/typing-indicators/):
 * `POST /{phone-number-id}/messages` with `{ status: "read", message_id: <wamid>, typing_indicator:
 * { type: "text" } }`. The indicator refers to the customer's message being answered and also marks
 * it read; WhatsApp dismisses it on the reply or after 25 seconds, so one that must last longer is
 * renewed.
 *
 * The engine signals typing just before it asks the bot, and only for a message the bot is asked
 * about (never for one muted by a handoff or skipped), which is when Meta asks for it. The signal
 * carries the conversation, not the message, so the last customer message's `wamid` is kept per
 * conversation key in the store (any gateway process may run the engine for it).
 *
 * Best effort: one attempt per indicator, failures logged at debug and never retried, since a late
 * indicator is worse than none.
 */
import type { Logger } from 'pino';
import type { Conversation, KeyValue } from '../../src/core/index.js';
import { parseChannelRef } from './inbound.js';

/** WhatsApp dismisses an indicator after 25 s; renewed a little earlier while the bot still works. */
export const RENEW_MS = 20_000;
/** Renewals at most (about two minutes in all): a bot slower than that is not typing any more. */
const MAX_RENEWALS = 5;
/** The wamid is only useful while the customer-service window is open. */
const LAST_INBOUND_TTL_S = 86_400;

export interface TypingDeps {
  kv: KeyValue;
  send(phoneNumberId: string, payload: Record<string, unknown>): Promise<unknown>;
  logger: Logger;
}

export class TypingIndicators {
  readonly #deps: TypingDeps;
  /** Renewal timers by conversation id, in this process. */
  readonly #timers = new Map<string, NodeJS.Timeout>();

  constructor(deps: TypingDeps) {
    this.#deps = deps;
  }

  /** Keeps the customer's latest message id for the conversation key, before the message is accepted. */
  remember(channelRef: string, wamid: string): Promise<void> {
    return this.#deps.kv.set(keyOf(channelRef), wamid, LAST_INBOUND_TTL_S);
  }

  /** Shows the indicator (renewing it while on) or stops renewing it. */
  set(conversation: Pick<Conversation, 'id' | 'channelRef'>, on: boolean): void {
    this.#clear(conversation.id);
    if (!on) return;
    void this.#show(conversation);
    let renewals = 0;
    const timer = setInterval(() => {
      if (++renewals > MAX_RENEWALS) return this.#clear(conversation.id);
      void this.#show(conversation);
    }, RENEW_MS);
    timer.unref();
    this.#timers.set(conversation.id, timer);
  }

  /** Stops every renewal (shutdown). */
  stop(): void {
    for (const id of [...this.#timers.keys()]) this.#clear(id);
  }

  #clear(conversationId: string): void {
    const timer = this.#timers.get(conversationId);
    if (timer) clearInterval(timer);
    this.#timers.delete(conversationId);
  }

  async #show(conversation: Pick<Conversation, 'id' | 'channelRef'>): Promise<void> {
    const route = parseChannelRef(conversation.channelRef);
    if (!route) return;
    try {
      const wamid = await this.#deps.kv.get(keyOf(conversation.channelRef));
      if (!wamid) return;
      await this.#deps.send(route.phoneNumberId, {
        status: 'read',
        message_id: wamid,
        typing_indicator: { type: 'text' },
      });
    } catch (err) {
      this.#deps.logger.debug(
        { conversationId: conversation.id, reason: (err as Error).message },
        'WhatsApp Cloud typing indicator not shown',
      );
    }
  }
}

function keyOf(channelRef: string): string {
  return `whatsapp_cloud:last-inbound:${channelRef}`;
}
