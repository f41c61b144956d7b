/**
 * @module Pure mapping of Twilio's webhook parameters onto the conversation model: inbound SMS and
 * WhatsApp messages, and outbound status callbacks. Field names are from
 * https://www.twilio.com/docs/messaging/guides/webhook-request and CHANNELS.md §1.5–1.6.
 */
import type {
  Attachment,
  ChannelName,
  DeliveryStatus,
  InboundMessage,
  Meta,
  SenderIdentity,
} from '../../src/core/index.js';
import type { Params } from './verify.js';

/** Twilio's prefix for WhatsApp addresses (`whatsapp:+14155551234`). */
export const WHATSAPP_PREFIX = 'whatsapp:';

/** Twilio delivers at most 10 media items per message (Media resource docs). */
const MAX_MEDIA = 10;

/** Separates our number from the customer's in a conversation's `channelRef`; no address contains it. */
const REF_SEPARATOR = '|';

export type Parsed<T> = { ok: true; value: T } | { ok: false; reason: string };

/** The first value of a parameter; empty strings count as absent. */
export function param(params: Params, name: string): string | undefined {
  const value = params[name];
  const first = Array.isArray(value) ? value[0] : value;
  return first === undefined || first === '' ? undefined : first;
}

/** `whatsapp` when the address carries the `whatsapp:` prefix, else `sms` (plain numbers, short codes). */
export function channelOf(address: string): 'whatsapp' | 'sms' {
  return address.toLowerCase().startsWith(WHATSAPP_PREFIX) ? 'whatsapp' : 'sms';
}

/** The address without the `whatsapp:` prefix; other addresses are kept as they are. */
export function bareAddress(address: string): string {
  return channelOf(address) === 'whatsapp' ? address.slice(WHATSAPP_PREFIX.length) : address;
}

/** The conversation key: our number and the customer's, without the channel prefix. */
export function channelRefOf(ours: string, customer: string): string {
  return `${bareAddress(ours)}${REF_SEPARATOR}${bareAddress(customer)}`;
}

/** Splits a `channelRef` made by {@link channelRefOf}; undefined for any other shape. */
export function parseChannelRef(ref: string): { ours: string; customer: string } | undefined {
  const parts = ref.split(REF_SEPARATOR);
  if (parts.length !== 2 || !parts[0] || !parts[1]) return undefined;
  return { ours: parts[0], customer: parts[1] };
}

/** Maps an inbound message webhook to an {@link InboundMessage}; refuses it when a required field is missing. */
export function toInbound(params: Params): Parsed<InboundMessage> {
  const sid = param(params, 'MessageSid') ?? param(params, 'SmsMessageSid');
  const from = param(params, 'From');
  const to = param(params, 'To');
  const missing = [!sid && 'MessageSid', !from && 'From', !to && 'To'].filter(Boolean);
  if (!sid || !from || !to) return { ok: false, reason: `missing ${missing.join(', ')}` };
  const channel = channelOf(from);
  const attachments = mediaOf(params);
  const meta: Meta = {
    twilio: compact({
      messageSid: sid,
      accountSid: param(params, 'AccountSid'),
      messagingServiceSid: param(params, 'MessagingServiceSid'),
      to,
      waId: param(params, 'WaId'),
      messageType: param(params, 'MessageType'),
      numSegments: param(params, 'NumSegments'),
      forwarded: param(params, 'Forwarded') === 'true' ? true : undefined,
    }),
  };
  let text = param(params, 'Body') ?? '';

  const location = locationOf(params);
  if (location) {
    meta.location = location;
    if (!text) text = describeLocation(location);
  }
  const buttonText = param(params, 'ButtonText');
  const buttonPayload = param(params, 'ButtonPayload');
  if (buttonText || buttonPayload) {
    meta.button = compact({ text: buttonText, payload: buttonPayload });
    if (!text) text = buttonText ?? buttonPayload ?? '';
  }
  const repliedSid = param(params, 'OriginalRepliedMessageSid');
  if (repliedSid) {
    meta.replyTo = compact({ externalId: repliedSid, sender: param(params, 'OriginalRepliedMessageSender') });
  }
  const referral = referralOf(params);
  if (referral) meta.referral = referral;

  const name = param(params, 'ProfileName');
  return {
    ok: true,
    value: {
      channel,
      channelRef: channelRefOf(to, from),
      dedupeKey: sid,
      from: compact({
        id: `${channel}:${bareAddress(from)}`,
        role: 'user' as const,
        address: bareAddress(from),
        name,
      }),
      message: { text, externalId: sid, attachments, meta },
      identity: senderIdentity(channel, bareAddress(from), param(params, 'WaId')),
    },
  };
}

/**
 * What Twilio vouches for about the sender (SPEC §9): an SMS sender's number is the carrier's; a
 * WhatsApp number is attested by `WaId` (the number's digits, without `+`), and only when they agree.
 */
function senderIdentity(
  channel: 'sms' | 'whatsapp',
  address: string,
  waId: string | undefined,
): SenderIdentity {
  if (channel === 'sms') return { verified: true, source: 'twilio' };
  return waId !== undefined && `+${waId}` === address
    ? { verified: true, source: 'twilio_waid' }
    : { verified: false, source: 'twilio' };
}

function mediaOf(params: Params): Attachment[] {
  const count = Math.min(MAX_MEDIA, Number.parseInt(param(params, 'NumMedia') ?? '0', 10) || 0);
  const media: Attachment[] = [];
  for (let i = 0; i < count; i++) {
    const url = param(params, `MediaUrl${i}`);
    if (!url || !/^https?:\/\//i.test(url)) continue;
    media.push({ url, contentType: param(params, `MediaContentType${i}`) ?? 'application/octet-stream' });
  }
  return media;
}

interface Location {
  latitude: number;
  longitude: number;
  address?: string;
  label?: string;
}

function locationOf(params: Params): Location | undefined {
  const latitude = Number(param(params, 'Latitude'));
  const longitude = Number(param(params, 'Longitude'));
  if (!param(params, 'Latitude') || !param(params, 'Longitude')) return undefined;
  if (!Number.isFinite(latitude) || !Number.isFinite(longitude)) return undefined;
  return compact({ latitude, longitude, address: param(params, 'Address'), label: param(params, 'Label') });
}

/** A shared location as text, so a text-only bot still sees it: "Location: Label, Address (lat, lon)". */
function describeLocation(l: Location): string {
  const place = [l.label, l.address].filter(Boolean).join(', ');
  return `Location: ${place ? `${place} ` : ''}(${l.latitude}, ${l.longitude})`;
}

/** Click-to-WhatsApp ad context (`Referral*` fields), when the conversation started from an ad. */
function referralOf(params: Params): Meta | undefined {
  const referral = compact({
    sourceId: param(params, 'ReferralSourceId'),
    sourceType: param(params, 'ReferralSourceType'),
    sourceUrl: param(params, 'ReferralSourceUrl'),
    headline: param(params, 'ReferralHeadline'),
    body: param(params, 'ReferralBody'),
    ctwaClid: param(params, 'ReferralCtwaClid'),
  });
  return Object.keys(referral).length > 0 ? referral : undefined;
}

/** A status callback, mapped onto the monotonic delivery status of SPEC §3. */
export interface StatusUpdate {
  channel: ChannelName;
  messageSid: string;
  /** Twilio's own status word, for logs. */
  twilioStatus: string;
  /** Undefined when the status says nothing new (`queued`, `sending`, `accepted` ...): nothing to record. */
  status?: DeliveryStatus;
  error?: { code?: string; message: string };
}

/**
 * Twilio's message statuses (twilio-node 6.2.0 `MessageStatus`) that move the delivery status. The
 * rest (`queued`, `sending`, `accepted`, `scheduled`, `receiving`, `received`, `partially_delivered`)
 * mean "still pending" or do not apply to a single outbound message.
 */
const STATUS_MAP: Readonly<Record<string, DeliveryStatus>> = {
  sent: 'sent',
  delivered: 'delivered',
  read: 'read',
  failed: 'failed',
  undelivered: 'failed',
  canceled: 'failed',
};

/** Maps a status callback; refuses it when `MessageSid` or `MessageStatus` is missing. */
export function toStatusUpdate(params: Params): Parsed<StatusUpdate> {
  const messageSid = param(params, 'MessageSid') ?? param(params, 'SmsSid');
  const twilioStatus = (param(params, 'MessageStatus') ?? param(params, 'SmsStatus'))?.toLowerCase();
  if (!messageSid || !twilioStatus) {
    const missing = [!messageSid && 'MessageSid', !twilioStatus && 'MessageStatus'].filter(Boolean);
    return { ok: false, reason: `missing ${missing.join(', ')}` };
  }
  const address = param(params, 'From') ?? param(params, 'To') ?? '';
  const status = STATUS_MAP[twilioStatus];
  const update: StatusUpdate = { channel: channelOf(address), messageSid, twilioStatus, status };
  if (status === 'failed') {
    const code = param(params, 'ErrorCode');
    update.error = compact({
      code,
      message: describeError(
        code,
        param(params, 'ErrorMessage'),
        twilioStatus === 'canceled' ? 'canceled' : undefined,
      ),
    });
  }
  return { ok: true, value: update };
}

/**
 * Readable reasons for the errors a conversation most often ends with. Wording follows the titles on
 * https://www.twilio.com/docs/api/errors/<code>; the link is always added for the rest.
 */
const ERROR_REASONS: Readonly<Record<string, string>> = {
  '21211': "Invalid 'To' phone number",
  '21408': 'Sending to this region is not enabled on the Twilio account',
  '21606': "The 'From' number is not a message-capable Twilio number for this destination",
  '21610': 'The recipient has unsubscribed (replied STOP)',
  '21614': "The 'To' number is not a valid mobile number",
  '21617': 'The message body exceeds the 1600 character limit',
  '30001': 'Queue overflow: too many messages queued for this sender',
  '30002': 'The Twilio account is suspended',
  '30003': 'Unreachable destination handset',
  '30004': 'Message blocked by the recipient or carrier',
  '30005': 'Unknown destination handset',
  '30006': 'Landline or unreachable carrier',
  '30007': 'Message filtered by the carrier',
  '30008': 'Unknown error from the carrier',
  '63016':
    'Outside the WhatsApp 24-hour messaging window: a free-form message can only answer a customer who wrote in the last 24 hours; use an approved template instead',
};

/** A reason a person can act on: Twilio's message if it sent one, else our table, plus the error page. */
export function describeError(code: string | undefined, twilioMessage?: string, fallback?: string): string {
  const reason =
    twilioMessage ??
    (code ? ERROR_REASONS[code] : undefined) ??
    fallback ??
    'Twilio reported the message as failed';
  return code ? `Twilio error ${code}: ${reason} (https://www.twilio.com/docs/api/errors/${code})` : reason;
}

/** Drops undefined members, so stored meta has no `undefined` holes. */
function compact<T extends Record<string, unknown>>(obj: T): { [K in keyof T]: Exclude<T[K], undefined> } {
  for (const key of Object.keys(obj)) if (obj[key] === undefined) delete obj[key];
  return obj as { [K in keyof T]: Exclude<T[K], undefined> };
}
