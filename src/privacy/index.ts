/**
 * @module PII redaction (SPEC §12; docs/production.md#pii-redaction). `PII_REDACT` lists the entity
 * types (`email`, `phone`, `card`, `iban`) masked before anything leaves for a party that does not
 * need them: the bot's request (the message and its history), outbound webhook events, and logs
 * (which never carry message text in the first place). The stored copy keeps the original for
 * agents, unless `PII_REDACT_STORE=true` masks it too, before it is stored.
 *
 * Each is a wrapper around what exists (the bot, the event listener, the accept path), so with
 * `PII_REDACT` unset nothing on the message path changes.
 */
import type { AcceptOptions, InboundMessage, Ingest } from '../core/channel.js';
import type { EventListener } from '../core/events.js';
import { extend } from '../core/extend.js';
import type { ChannelName, Conversation } from '../core/model.js';
import type { NewMessage } from '../core/store.js';
import type { Bot, BotRequest } from '../pipeline/bot/types.js';
import { type EntityType, redactMessage } from './redact.js';

export { ENTITY_TYPES, type EntityType, redactMessage, redactText } from './redact.js';

export interface PrivacyPolicy {
  types: ReadonlySet<EntityType>;
  /** Mask the stored copy too. */
  store: boolean;
}

/** The policy of the settings, or undefined when nothing is to be masked. */
export function privacyPolicy(config: {
  PII_REDACT: readonly EntityType[];
  PII_REDACT_STORE: boolean;
}): PrivacyPolicy | undefined {
  if (config.PII_REDACT.length === 0) return undefined;
  return { types: new Set(config.PII_REDACT), store: config.PII_REDACT_STORE };
}

/** The bot, asked about masked messages: the current one and its history. */
export function redactingBot(bot: Bot, types: ReadonlySet<EntityType>): Bot {
  const wrapped: Bot = {
    kind: bot.kind,
    reply(request: BotRequest, signal: AbortSignal) {
      return bot.reply(
        extend(request, {
          message: redactMessage(request.message, types),
          history: request.history.map((m) => redactMessage(m, types)),
        }),
        signal,
      );
    },
  };
  if (bot.circuitOpen) wrapped.circuitOpen = () => bot.circuitOpen!();
  return wrapped;
}

/** An event listener (outbound webhooks) that sees every message event's message masked. */
export function redactingListener(listener: EventListener, types: ReadonlySet<EntityType>): EventListener {
  return (event) =>
    listener(event.message ? extend(event, { message: redactMessage(event.message, types) }) : event);
}

/** The accept path, storing masked messages (`PII_REDACT_STORE=true`). */
export function redactingIngest(ingest: Ingest, types: ReadonlySet<EntityType>): Ingest {
  return {
    accept: (inbound: InboundMessage) =>
      ingest.accept(extend(inbound, { message: redactMessage(inbound.message, types) })),
    acceptInto: (
      conversation: Pick<Conversation, 'id'>,
      channel: ChannelName,
      dedupeKey: string,
      message: NewMessage,
      options?: AcceptOptions,
    ) => ingest.acceptInto(conversation, channel, dedupeKey, redactMessage(message, types), options),
    contactOf: (...args) => ingest.contactOf(...args),
    attachContact: (...args) => ingest.attachContact(...args),
  };
}
