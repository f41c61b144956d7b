/**
 * @module Sending through the Cloud API: a stored message becomes one or more message objects for
 * `POST /{version}/{phone-number-id}/messages`, in order.
 *
 *   - text: `{ type: "text", text: { body } }`, split at 4,096 characters (CHANNELS.md §4);
 *   - quick replies: up to 3 with titles of at most 20 characters become reply buttons
 *     (`interactive.type = "button"`); up to 10 become a list (`interactive.type = "list"`, row titles
 *     at most 24 characters, the full title in the row description when cut); more than 10 are
 *     written out under the text. Each button or row id is the quick reply's payload (else its title),
 *     which comes back in the customer's `button_reply` / `list_reply` (inbound.ts);
 *   - attachments: media by link (`image`, `video`, `audio`, `document` by content type), the text as
 *     the caption of the first one when it fits in 1,024 characters.
 *
 * Limits are from Meta's "Interactive reply buttons messages" and "Interactive list messages"
 * references (https://developers.facebook.com/documentation/business-messaging/whatsapp/messages/interactive-reply-buttons-messages/,
 * .../interactive-list-messages/): at most 3 buttons, button titles 20 characters, ids 256; at most
 * 10 rows, row titles 24, descriptions 72, ids 200; body text 1,024 (buttons) or 4,096 (list); list
 * button label 20.
 */
import type { Logger } from 'pino';
import { writeOutQuickReplies } from '../../src/channels/capabilities.js';
import {
  type Attachment,
  type Conversation,
  type Message,
  PermanentSendError,
  type QuickReply,
  type SendResult,
} from '../../src/core/index.js';
import { templateOf } from '../../src/whatsapp/window.js';
import { splitText } from '../twilio/outbound.js';
import { GraphError } from './graph.js';
import { CHANNEL, describeError, parseChannelRef } from './inbound.js';

export const TEXT_LIMIT = 4096;
const CAPTION_LIMIT = 1024;
const BUTTONS_MAX = 3;
const BUTTON_TITLE_MAX = 20;
const BUTTON_ID_MAX = 256;
const BUTTON_BODY_MAX = 1024;
const ROWS_MAX = 10;
const ROW_TITLE_MAX = 24;
const ROW_DESCRIPTION_MAX = 72;
const ROW_ID_MAX = 200;
/** The label of the button that opens a list (at most 20 characters). */
export const LIST_BUTTON_LABEL = 'Choose';
/** Interactive messages need a body; used when the bot sent quick replies without text. */
const DEFAULT_BODY = 'Choose an option';

/** One message object, without `messaging_product`, `recipient_type` and `to`. */
export type Payload = Record<string, unknown> & { type: string };

/** Cuts to `max` UTF-16 units on a grapheme boundary, with an ellipsis when cut. */
function cut(text: string, max: number): string {
  if (text.length <= max) return text;
  let end = 0;
  for (const { index } of new Intl.Segmenter(undefined, { granularity: 'grapheme' }).segment(text)) {
    if (index > max - 1) break;
    end = index;
  }
  return `${text.slice(0, end).trimEnd()}…`;
}

/** The quick replies as reply buttons, a list, or undefined when there are more than a list holds. */
export function interactiveOf(body: string, quickReplies: readonly QuickReply[]): Payload | undefined {
  const text = body.trim() || DEFAULT_BODY;
  const ids = (max: number) => quickReplies.map((q) => (q.payload ?? q.title).slice(0, max));
  if (
    quickReplies.length <= BUTTONS_MAX &&
    quickReplies.every((q) => q.title.length <= BUTTON_TITLE_MAX) &&
    text.length <= BUTTON_BODY_MAX
  ) {
    const buttonIds = ids(BUTTON_ID_MAX);
    return {
      type: 'interactive',
      interactive: {
        type: 'button',
        body: { text },
        action: {
          buttons: quickReplies.map((q, i) => ({
            type: 'reply',
            reply: { id: buttonIds[i], title: q.title },
          })),
        },
      },
    };
  }
  if (quickReplies.length <= ROWS_MAX && text.length <= TEXT_LIMIT) {
    const rowIds = ids(ROW_ID_MAX);
    return {
      type: 'interactive',
      interactive: {
        type: 'list',
        body: { text },
        action: {
          button: LIST_BUTTON_LABEL,
          sections: [
            {
              rows: quickReplies.map((q, i) => ({
                id: rowIds[i],
                title: cut(q.title, ROW_TITLE_MAX),
                ...(q.title.length > ROW_TITLE_MAX ? { description: cut(q.title, ROW_DESCRIPTION_MAX) } : {}),
              })),
            },
          ],
        },
      },
    };
  }
  return undefined;
}

/** The Cloud API media type for a content type; anything not image, video or audio goes as a document. */
function mediaType(contentType: string): 'image' | 'video' | 'audio' | 'document' {
  const major = contentType.split('/')[0]?.toLowerCase();
  return major === 'image' || major === 'video' || major === 'audio' ? major : 'document';
}

function mediaPayload(a: Attachment, caption?: string): Payload {
  if (!/^https?:\/\//i.test(a.url)) {
    throw new PermanentSendError(
      `Attachment URL ${JSON.stringify(a.url)} is not an absolute http(s) URL that WhatsApp can fetch`,
      'GW_WHATSAPP_CLOUD_BAD_MEDIA',
    );
  }
  const type = mediaType(a.contentType);
  const media: Record<string, unknown> = { link: a.url };
  // Audio takes no caption; documents carry their file name.
  if (caption && type !== 'audio') media.caption = caption;
  if (type === 'document' && a.name) media.filename = a.name;
  return { type, [type]: media };
}

/**
 * Plans the message objects for one stored message: text parts, then the quick replies on the last
 * part (as buttons or a list), then the attachments; without quick replies a single short text rides
 * as the first attachment's caption.
 */
export function planPayloads(message: Pick<Message, 'text' | 'attachments' | 'quickReplies'>): Payload[] {
  const quickReplies = message.quickReplies ?? [];
  let text = (message.text ?? '').trim();
  let interactive: Payload | undefined;
  const payloads: Payload[] = [];
  if (quickReplies.length > 0) {
    const parts = splitText(text, TEXT_LIMIT);
    const last = parts.pop() ?? '';
    interactive = interactiveOf(last, quickReplies);
    if (interactive) {
      for (const body of parts) payloads.push({ type: 'text', text: { body } });
      payloads.push(interactive);
      text = '';
    } else {
      // More than a list holds: written out, as on channels without buttons.
      text = writeOutQuickReplies(text, quickReplies);
    }
  }
  const attachments = message.attachments ?? [];
  const captioned =
    text !== '' &&
    text.length <= CAPTION_LIMIT &&
    attachments[0] &&
    mediaType(attachments[0].contentType) !== 'audio';
  if (text && !captioned) {
    for (const body of splitText(text, TEXT_LIMIT)) payloads.push({ type: 'text', text: { body } });
  }
  attachments.forEach((a, i) => {
    payloads.push(mediaPayload(a, i === 0 && captioned ? text : undefined));
  });
  return payloads;
}

/** Which business number sends and which customer receives. */
export interface Route {
  phoneNumberId: string;
  /** The customer's `wa_id` (digits, no `+`). */
  to: string;
}

/**
 * Where a reply goes: from the business number the customer wrote to, to the customer. Conversations
 * created through the API name the customer as the `user` participant's address (E.164) and go out
 * from `WHATSAPP_PHONE_NUMBER_ID`.
 */
export function routeOf(
  conversation: Pick<Conversation, 'channelRef' | 'participants'>,
  defaultPhoneNumberId: string,
): Route {
  const parsed = parseChannelRef(conversation.channelRef);
  if (parsed) return { phoneNumberId: parsed.phoneNumberId, to: parsed.waId };
  const customer = conversation.participants.find((p) => p.role === 'user')?.address?.replace(/^\+/, '');
  if (!customer || !/^\d{6,15}$/.test(customer)) {
    throw new PermanentSendError(
      'The conversation names no WhatsApp customer: expected a channelRef "<phone number id>|<wa_id>" or a user participant whose address is an E.164 number',
      'GW_WHATSAPP_CLOUD_NO_ROUTE',
    );
  }
  return { phoneNumberId: defaultPhoneNumberId, to: customer };
}

export interface SenderDeps {
  send(phoneNumberId: string, payload: Record<string, unknown>): Promise<string>;
  /** `WHATSAPP_PHONE_NUMBER_ID`. */
  phoneNumberId: string;
  /** Maps a returned `wamid` to the stored message, so status webhooks for every part find it. */
  remember(wamid: string): Promise<void>;
  logger: Logger;
  /** Waits for the phone number's next send slot (WHATSAPP_SEND_RATE_PER_SEC); absent when off. */
  pace?: (phoneNumberId: string) => Promise<void>;
}

/**
 * Sends one stored message, object by object, in order. Returns the first `wamid` as the message's
 * `externalId`; every one is remembered, so any part's status moves the message.
 * @throws PermanentSendError with Meta's error code when the Graph API refuses or keeps failing.
 */
export async function sendMessage(
  deps: SenderDeps,
  conversation: Conversation,
  message: Message,
): Promise<SendResult> {
  if (conversation.channel !== CHANNEL) {
    throw new PermanentSendError(
      `The WhatsApp Cloud API cannot send on the ${conversation.channel} channel`,
      'GW_WHATSAPP_CLOUD_CHANNEL',
    );
  }
  const route = routeOf(conversation, deps.phoneNumberId);
  const template = templateOf(message);
  const payloads: Payload[] =
    template && 'name' in template
      ? [
          {
            type: 'template',
            template: {
              name: template.name,
              language: { code: template.language },
              ...(template.components ? { components: template.components } : {}),
            },
          },
        ]
      : planPayloads(message);
  if (payloads.length === 0) {
    throw new PermanentSendError(
      'Nothing to send: the message has no text and no attachments',
      'GW_WHATSAPP_CLOUD_EMPTY',
    );
  }
  const ids: string[] = [];
  for (const [i, payload] of payloads.entries()) {
    let wamid: string;
    await deps.pace?.(route.phoneNumberId);
    try {
      wamid = await deps.send(route.phoneNumberId, { to: route.to, ...payload });
    } catch (err) {
      throw toSendError(err, i, payloads.length);
    }
    ids.push(wamid);
    await deps.remember(wamid);
  }
  deps.logger.debug({ messageId: message.id, wamids: ids }, 'sent through the WhatsApp Cloud API');
  return { externalId: ids[0], status: 'sent', remembered: true };
}

/** A Graph API failure as a PermanentSendError carrying Meta's code and a readable reason. */
export function toSendError(err: unknown, sent: number, total: number): Error {
  const progress = sent > 0 ? ` (${sent} of ${total} parts were sent before this)` : '';
  if (err instanceof GraphError) {
    const reason =
      err.code !== undefined
        ? describeError(err.code, err.details ?? err.message)
        : `${err.message}${err.status ? ` (HTTP ${err.status})` : ''}`;
    const prefix = err.transient ? 'Gave up on a transient error: ' : '';
    return new PermanentSendError(`${prefix}${reason}${progress}`, err.code, { cause: err });
  }
  return new PermanentSendError(
    `Could not send through the WhatsApp Cloud API: ${(err as Error).message}${progress}`,
    undefined,
    {
      cause: err,
    },
  );
}
