/**
 * @module Typing indicators on the Cloud API (CHANNELS.md "Typing indicators on WhatsApp"; Meta
 * "Typing indicators", https://developers.facebook.com/documentation/business-messaging/whatsapp/typing-indicators/):
 * `POST /{phone-number-id}/messages` with `{ status: "read", message_id: <wamid>, typing_indicator:
 * { type: "text" } }`. The indicator refers to the customer's message being answered and also marks
 * it read; WhatsApp dismisses it on the reply or after 25 seconds. When to show it, and renewing it
 * while the bot still works, is the typing room's (src/typing/): it signals only for a message the bot
 * is asked about (never for one muted by a handoff or skipped), which is when Meta asks for it.
 *
 * The signal names the message being answered; an agent's typing (the API's typing route) does not,
 * so the last customer message's `wamid` is also kept per conversation key in the store (any gateway
 * process may run the engine for it).
 *
 * Best effort: one attempt per indicator, failures logged at debug and never retried, since a late
 * indicator is worse than none.
 */
import type { Logger } from 'pino';
import type { Conversation, KeyValue } from '../../src/core/index.js';
import { parseChannelRef } from './inbound.js';

/** The wamid is only useful while the customer-service window is open. */
const LAST_INBOUND_TTL_S = 86_400;

export interface TypingDeps {
  kv: KeyValue;
  send(phoneNumberId: string, payload: Record<string, unknown>): Promise<unknown>;
  logger: Logger;
}

export class TypingIndicators {
  readonly #deps: TypingDeps;

  constructor(deps: TypingDeps) {
    this.#deps = deps;
  }

  /** Keeps the customer's latest message id for the conversation key, before the message is accepted. */
  remember(channelRef: string, wamid: string): Promise<void> {
    return this.#deps.kv.set(keyOf(channelRef), wamid, LAST_INBOUND_TTL_S);
  }

  /**
   * Shows the indicator once, for the message being answered (`wamid`, else the last one remembered);
   * `off` does nothing, since WhatsApp dismisses it with the reply. Resolves when the request is done.
   */
  async set(
    conversation: Pick<Conversation, 'id' | 'channelRef'>,
    on: boolean,
    wamid?: string,
  ): Promise<void> {
    if (!on) return;
    const route = parseChannelRef(conversation.channelRef);
    if (!route) return;
    try {
      const id = wamid ?? (await this.#deps.kv.get(keyOf(conversation.channelRef)));
      if (!id) return;
      await this.#deps.send(route.phoneNumberId, {
        status: 'read',
        message_id: id,
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
