/**
 * @module Typing indicators on WhatsApp through Twilio (CHANNELS.md "Typing indicators on WhatsApp";
 * Twilio "Typing Indicators resource", public beta): `POST https://messaging.twilio.com/v2/Indicators/Typing.json`
 * with the form fields `channel=whatsapp` and `messageId=<the inbound SM…/MM… SID>`, made with the
 * twilio package's own `messaging.v2.typingIndicator.create`. It also marks that message read; WhatsApp
 * dismisses it when the reply is delivered or after 25 s. When to show it and renewing it are the
 * typing room's (src/typing/).
 *
 * The resource lives on `messaging.twilio.com`, not `api.twilio.com`: with the default
 * `TWILIO_API_URL` the request goes there; with another one (a proxy, the tests' fake) it goes to that
 * base like every other Twilio request ({@link ForwardingRequestClient} rewrites the origin, which also
 * overrides any TWILIO_EDGE / TWILIO_REGION host the library derives).
 *
 * Best effort: one attempt with a short timeout, failures logged at debug, since a late indicator is
 * worse than none (the reply waits for a request under way, so it must be short).
 */
import type { Logger } from 'pino';
import twilio from 'twilio';
import type { ChannelSignal, Conversation } from '../../src/core/index.js';
import { DEFAULT_API_URL } from './config.js';
import { ForwardingRequestClient } from './outbound.js';

/** Twilio's host for the Messaging v2 resources. */
export const MESSAGING_API_URL = 'https://messaging.twilio.com';

/** One attempt, short: the reply waits for an indicator request under way. */
const TYPING_POLICY = { attempts: 1, baseMs: 0, capMs: 0, maxRetryAfterMs: 0, timeoutMs: 3_000 };

/** Inbound message SIDs: `SM` (text) or `MM` (media) and 32 hex digits. */
const MESSAGE_SID = /^(SM|MM)[0-9a-f]{32}$/;

export interface TypingClient {
  create(params: { channel: 'whatsapp'; messageId: string }): Promise<unknown>;
}

/** Where typing requests go: Twilio's Messaging host by default, else `TWILIO_API_URL` like the rest. */
export function typingBaseUrl(apiUrl: string): string {
  return apiUrl === DEFAULT_API_URL ? MESSAGING_API_URL : apiUrl;
}

/** The twilio package's Typing Indicators resource, reached as described in the module comment. */
export function createTypingClient(
  accountSid: string,
  authToken: string,
  apiUrl: string,
  logger: Logger,
): TypingClient {
  const client = twilio(accountSid, authToken, {
    httpClient: new ForwardingRequestClient(typingBaseUrl(apiUrl), logger, TYPING_POLICY),
    logLevel: 'info',
  });
  return { create: (params) => client.messaging.v2.typingIndicator.create(params) };
}

/**
 * Shows the indicator for the WhatsApp message being answered; resolves when the request is done and
 * never rejects. Nothing on SMS (no indicator), for `off` (the reply dismisses it) or without the
 * message's SID (an agent's typing names no message).
 */
export async function showTyping(
  client: TypingClient,
  logger: Logger,
  conversation: Pick<Conversation, 'id' | 'channel'>,
  signal: ChannelSignal,
): Promise<void> {
  const sid = signal.about?.externalId;
  if (conversation.channel !== 'whatsapp' || !signal.on || !sid || !MESSAGE_SID.test(sid)) return;
  try {
    await client.create({ channel: 'whatsapp', messageId: sid });
  } catch (err) {
    logger.debug(
      { conversationId: conversation.id, messageSid: sid, reason: (err as Error).message },
      'Twilio WhatsApp typing indicator not shown',
    );
  }
}
