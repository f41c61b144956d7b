/**
 * @module WhatsApp's customer service window (channel-depth issue; docs/whatsapp-window.md).
 * A business may send free-form messages to a WhatsApp user only within 24 hours of that user's last
 * message; outside it only an approved template goes through (Twilio: a Content API template,
 * `contentSid` + `variables`; Meta's Cloud API: a `template` object). The providers refuse anything
 * else (Twilio error 63016, Cloud API error 131047), after the gateway already stored the message.
 *
 * So the gateway checks first: an API send outside the window without a template is refused with
 * `422 GW_ERR_WHATSAPP_WINDOW_CLOSED` and stores nothing; a bot reply that lands outside it (a slow
 * bot, a queued retry) fails on the message with that code instead of a provider error.
 */
import { z } from 'zod';
import type { ChannelName, Message } from '../core/model.js';
import type { Store } from '../core/store.js';

/** 24 hours from the customer's last message (Meta: "customer service window"). */
export const WINDOW_MS = 24 * 60 * 60 * 1000;
/** How many of the conversation's latest customer messages are looked at for the channel's own. */
const LOOK_BACK = 50;

export type WhatsAppChannel = 'whatsapp' | 'whatsapp_cloud';

export function isWhatsApp(channel: ChannelName): channel is WhatsAppChannel {
  return channel === 'whatsapp' || channel === 'whatsapp_cloud';
}

/** A Twilio Content API template (https://www.twilio.com/docs/content). */
export const twilioTemplateSchema = z.strictObject({
  contentSid: z.string().regex(/^HX[0-9a-fA-F]{32}$/, 'must be a Content SID, "HX" and 32 hex digits'),
  /** Placeholder values by their number or name: `{ "1": "Ada" }`. */
  variables: z.record(z.string().min(1).max(50), z.string().max(1024)).optional(),
});

/** A Cloud API template message (Graph API `type: "template"`). */
export const cloudTemplateSchema = z.strictObject({
  name: z.string().regex(/^[a-z0-9_]{1,512}$/, 'must be the approved template name: lower case, digits, "_"'),
  language: z.string().regex(/^[a-z]{2,3}(_[A-Z]{2})?$/, 'must be a language code such as "en" or "en_US"'),
  /** Header, body and button parameters, passed to the Graph API as they are. */
  components: z.array(z.record(z.string(), z.unknown())).max(20).optional(),
});

export const templateSchema = z.union([twilioTemplateSchema, cloudTemplateSchema]);
export type WhatsAppTemplate = z.infer<typeof templateSchema>;

/** Where a message keeps its template (`meta.whatsappTemplate`), for the adapter that sends it. */
export const TEMPLATE_META = 'whatsappTemplate';

export function templateOf(message: Pick<Message, 'meta'>): WhatsAppTemplate | undefined {
  const t = message.meta?.[TEMPLATE_META];
  return t && typeof t === 'object' ? (t as WhatsAppTemplate) : undefined;
}

/** The template's provider: `whatsapp` (Twilio) for a Content SID, `whatsapp_cloud` for a name. */
export function templateChannel(template: WhatsAppTemplate): WhatsAppChannel {
  return 'contentSid' in template ? 'whatsapp' : 'whatsapp_cloud';
}

/**
 * When the customer last wrote on `channel` in the conversation (ms since the epoch), or null when
 * they never did (a conversation the business opened).
 */
export async function lastCustomerMessageAt(
  store: Pick<Store, 'listMessages'>,
  conversation: { id: string; channel: ChannelName },
  channel: WhatsAppChannel,
): Promise<number | null> {
  const page = await store.listMessages(conversation.id, { take: LOOK_BACK, order: 'desc', type: 'user' });
  const last = page.items.find(
    (m) => m.direction === 'inbound' && (m.channel ?? conversation.channel) === channel,
  );
  return last ? Date.parse(last.createdAt) : null;
}

/** Whether a free-form message may go out at `now`. */
export function windowOpen(lastCustomerAt: number | null, now = Date.now()): boolean {
  return lastCustomerAt !== null && now - lastCustomerAt < WINDOW_MS;
}
