/**
 * @module Pure mapping of Cloud API webhook notifications onto the conversation model. One `POST` may
 * carry several entries, changes, messages and statuses (CHANNELS.md §4); each message becomes one
 * {@link InboundMessage} (dedupe key: its `wamid`), each status one delivery report.
 *
 * Field names are from Meta's "Messages webhook reference"
 * (https://developers.facebook.com/documentation/business-messaging/whatsapp/webhooks/reference/messages/)
 * and CHANNELS.md §4; the status error codes from "WhatsApp error codes"
 * (https://developers.facebook.com/documentation/business-messaging/whatsapp/support/error-codes/).
 */
import type { DeliveryStatus, InboundMessage, Meta, SenderIdentity } from '../../src/core/index.js';

/** The conversation channel of this adapter (see src/core/model.ts for why it is not `whatsapp`). */
export const CHANNEL = 'whatsapp_cloud' as const;

/** Separates the business phone number id from the customer's `wa_id` in a `channelRef`. */
const REF_SEPARATOR = '|';

/** Media message types, each with an object `{ id, mime_type, sha256, caption?, filename? }`. */
export const MEDIA_TYPES = ['image', 'document', 'audio', 'video', 'sticker'] as const;
export type MediaType = (typeof MEDIA_TYPES)[number];

/** Media to download before the message is accepted (see index.ts). */
export interface MediaRef {
  type: MediaType;
  id: string;
  mimeType?: string;
  filename?: string;
}

/** One message of a notification, mapped; `media` is still to be downloaded. */
export interface MappedMessage {
  inbound: InboundMessage;
  media?: MediaRef;
}

/** One `statuses[]` item, mapped onto the monotonic delivery status of SPEC §3. */
export interface StatusUpdate {
  wamid: string;
  /** Meta's status word, for logs. */
  metaStatus: string;
  /** Undefined for a status that says nothing new for a single message. */
  status?: DeliveryStatus;
  error?: { code?: string; message: string };
}

/** What one webhook body carries. */
export interface Notification {
  messages: MappedMessage[];
  statuses: StatusUpdate[];
  /** `value.errors[]`: problems Meta reports about the subscription or the number, logged. */
  errors: { code?: string; message: string }[];
  /** Changes of a field other than `messages` (account updates ...), counted in logs and ignored. */
  ignored: number;
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; reason: string };

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (o: unknown, key: string): string | undefined => {
  if (!isObj(o)) return undefined;
  const v = o[key];
  return typeof v === 'string' && v !== '' ? v : typeof v === 'number' ? String(v) : undefined;
};
const obj = (o: unknown, key: string): Obj | undefined => (isObj(o) && isObj(o[key]) ? o[key] : undefined);
const arr = (o: unknown, key: string): unknown[] => (isObj(o) && Array.isArray(o[key]) ? o[key] : []);

/** The conversation key: the business phone number id and the customer's `wa_id`. */
export function channelRefOf(phoneNumberId: string, waId: string): string {
  return `${phoneNumberId}${REF_SEPARATOR}${waId}`;
}

/** Splits a `channelRef` made by {@link channelRefOf}; undefined for any other shape. */
export function parseChannelRef(ref: string): { phoneNumberId: string; waId: string } | undefined {
  const parts = ref.split(REF_SEPARATOR);
  if (parts.length !== 2 || !parts[0] || !parts[1]) return undefined;
  return { phoneNumberId: parts[0], waId: parts[1] };
}

/** A `wa_id` that is a phone number's digits (country code first, no `+`). */
const WA_ID_RE = /^[1-9]\d{5,14}$/;

/**
 * Maps a parsed webhook body. Refuses a body that is not a `whatsapp_business_account` notification
 * or whose messages lack the fields every message has (`id`, `from`, the phone number id).
 */
export function parseNotification(body: unknown): Parsed<Notification> {
  if (!isObj(body)) return { ok: false, reason: 'the body is not a JSON object' };
  if (body.object !== 'whatsapp_business_account') {
    return { ok: false, reason: 'object is not "whatsapp_business_account"' };
  }
  const out: Notification = { messages: [], statuses: [], errors: [], ignored: 0 };
  for (const entry of arr(body, 'entry')) {
    for (const change of arr(entry, 'changes')) {
      const field = str(change, 'field');
      const value = obj(change, 'value');
      if (field !== 'messages' || !value) {
        out.ignored++;
        continue;
      }
      const phoneNumberId = str(obj(value, 'metadata'), 'phone_number_id');
      const names = new Map<string, string>();
      for (const c of arr(value, 'contacts')) {
        const waId = str(c, 'wa_id');
        const name = str(obj(c, 'profile'), 'name');
        if (waId && name) names.set(waId, name);
      }
      for (const m of arr(value, 'messages')) {
        if (!phoneNumberId) return { ok: false, reason: 'missing metadata.phone_number_id' };
        const mapped = mapMessage(m, phoneNumberId, names, str(entry, 'id'));
        if (!mapped.ok) return mapped;
        out.messages.push(mapped.value);
      }
      for (const s of arr(value, 'statuses')) {
        const mapped = mapStatus(s);
        if (!mapped.ok) return mapped;
        out.statuses.push(mapped.value);
      }
      for (const e of arr(value, 'errors')) out.errors.push(errorOf(e));
    }
  }
  return { ok: true, value: out };
}

function mapMessage(
  m: unknown,
  phoneNumberId: string,
  names: Map<string, string>,
  wabaId: string | undefined,
): Parsed<MappedMessage> {
  const wamid = str(m, 'id');
  const from = str(m, 'from');
  const type = str(m, 'type') ?? 'unknown';
  if (!wamid || !from) {
    return {
      ok: false,
      reason: `a message lacks ${[!wamid && 'id', !from && 'from'].filter(Boolean).join(' and ')}`,
    };
  }
  const whatsapp: Meta = compact({
    wamid,
    type,
    phoneNumberId,
    wabaId,
    timestamp: str(m, 'timestamp'),
  });
  const meta: Meta = { whatsapp };
  const context = obj(m, 'context');
  const repliedId = str(context, 'id');
  if (repliedId) meta.replyTo = compact({ externalId: repliedId, sender: str(context, 'from') });
  if (context?.forwarded === true) whatsapp.forwarded = true;
  const referral = obj(m, 'referral');
  if (referral) meta.referral = referral;

  let text = '';
  let kind: 'user' | 'activity' = 'user';
  let media: MediaRef | undefined;
  if (type === 'text') {
    text = str(obj(m, 'text'), 'body') ?? '';
  } else if ((MEDIA_TYPES as readonly string[]).includes(type)) {
    const o = obj(m, type);
    const id = str(o, 'id');
    text = str(o, 'caption') ?? '';
    if (id) {
      media = compact({
        type: type as MediaType,
        id,
        mimeType: str(o, 'mime_type'),
        filename: str(o, 'filename'),
      });
      whatsapp.media = compact({ id, mimeType: media.mimeType, filename: media.filename });
    }
  } else if (type === 'interactive') {
    // A tap on a reply button or a list row the bot sent: the title is what the customer saw, the id
    // is the payload the bot set (outbound.ts), kept as the quick reply like Slack's buttons.
    const interactive = obj(m, 'interactive');
    const reply = obj(interactive, 'button_reply') ?? obj(interactive, 'list_reply');
    const title = str(reply, 'title');
    const id = str(reply, 'id');
    if (reply) {
      text = title ?? id ?? '';
      meta.quickReply = compact({ title, payload: id });
    } else {
      text = '[interactive message]';
      kind = 'activity';
    }
  } else if (type === 'button') {
    // A quick-reply button of a template message: `{ payload, text }`.
    const button = obj(m, 'button');
    const title = str(button, 'text');
    const payload = str(button, 'payload');
    text = title ?? payload ?? '';
    meta.quickReply = compact({ title, payload });
  } else if (type === 'location') {
    const l = obj(m, 'location');
    const latitude = Number(l?.latitude);
    const longitude = Number(l?.longitude);
    if (Number.isFinite(latitude) && Number.isFinite(longitude) && l?.latitude !== undefined) {
      const location = compact({
        latitude,
        longitude,
        label: str(l, 'name'),
        address: str(l, 'address'),
      });
      meta.location = location;
      const place = [location.label, location.address].filter(Boolean).join(', ');
      text = `Location: ${place ? `${place} ` : ''}(${latitude}, ${longitude})`;
    } else {
      text = '[location]';
    }
  } else if (type === 'contacts') {
    const cards = arr(m, 'contacts').filter(isObj);
    meta.contacts = cards;
    const described = cards.map((c) => {
      const name = str(obj(c, 'name'), 'formatted_name') ?? 'Unnamed';
      const phones = arr(c, 'phones')
        .map((p) => str(p, 'phone'))
        .filter(Boolean);
      return phones.length > 0 ? `${name} (${phones.join(', ')})` : name;
    });
    text = `Shared contact${cards.length === 1 ? '' : 's'}: ${described.join('; ') || 'none'}`;
  } else if (type === 'reaction') {
    const r = obj(m, 'reaction');
    const emoji = str(r, 'emoji');
    meta.reaction = compact({ messageId: str(r, 'message_id'), emoji });
    text = emoji ? `Reacted ${emoji}` : 'Removed a reaction';
    kind = 'activity';
  } else {
    // `unsupported`, `system`, `order`, `request_welcome` ...: kept for the record, not for the bot.
    const errors = arr(m, 'errors').map(errorOf);
    if (errors.length > 0) whatsapp.errors = errors;
    text = `[${type} message${errors[0] ? `: ${errors[0].message}` : ''}]`;
    kind = 'activity';
  }

  const address = WA_ID_RE.test(from) ? `+${from}` : from;
  const name = names.get(from);
  const inbound: InboundMessage = {
    channel: CHANNEL,
    channelRef: channelRefOf(phoneNumberId, from),
    dedupeKey: wamid,
    from: compact({ id: `${CHANNEL}:${address}`, role: 'user' as const, address, name }),
    message: { text, externalId: wamid, meta, ...(kind === 'activity' ? { type: 'activity' } : {}) },
    identity: senderIdentity(from),
    ...(kind === 'activity' ? { skipBot: true } : {}),
  };
  if (name) inbound.message.name = name;
  return { ok: true, value: compact({ inbound, media }) };
}

/**
 * What Meta vouches for about the sender (SPEC §9): the `wa_id` is the WhatsApp account's phone
 * number as Meta registered it, so on a signed request it is verified, like Twilio's `WaId`. Any
 * other shape of sender id (not a number's digits) is kept unverified.
 */
function senderIdentity(waId: string): SenderIdentity {
  return WA_ID_RE.test(waId) ? { verified: true, source: 'meta_wa_id' } : { verified: false, source: 'meta' };
}

/** Meta's status words (Messages webhook reference, `statuses[].status`) that move the delivery status. */
const STATUS_MAP: Readonly<Record<string, DeliveryStatus>> = {
  sent: 'sent',
  delivered: 'delivered',
  read: 'read',
  failed: 'failed',
};

function mapStatus(s: unknown): Parsed<StatusUpdate> {
  const wamid = str(s, 'id');
  const metaStatus = str(s, 'status')?.toLowerCase();
  if (!wamid || !metaStatus) {
    return {
      ok: false,
      reason: `a status lacks ${[!wamid && 'id', !metaStatus && 'status'].filter(Boolean).join(' and ')}`,
    };
  }
  const status = STATUS_MAP[metaStatus];
  const update: StatusUpdate = { wamid, metaStatus, status };
  if (status === 'failed') {
    const first = arr(s, 'errors')[0];
    update.error = first ? errorOf(first) : { message: 'WhatsApp reported the message as failed' };
  }
  return { ok: true, value: update };
}

/**
 * Readable reasons for the errors a conversation most often ends with, after the titles and
 * descriptions on Meta's "WhatsApp error codes" page; Meta's own `error_data.details` wins when sent.
 */
export const ERROR_REASONS: Readonly<Record<string, string>> = {
  '0': 'The access token could not be authenticated (expired or invalidated): create a new one',
  '10': 'The access token lacks the whatsapp_business_messaging permission',
  '100': 'Invalid parameter in the request',
  '190': 'The access token has expired: set a permanent system user token in WHATSAPP_ACCESS_TOKEN',
  '131000': 'Something went wrong at WhatsApp',
  '131005': 'Access denied: the token has no permission for this phone number',
  '131008': 'A required parameter is missing',
  '131009': 'A parameter value is not valid',
  '131021': 'The recipient is the sender: a business number cannot message itself',
  '131026':
    'Message undeliverable: the number is not on WhatsApp, has not accepted the latest terms, or runs an old WhatsApp version',
  '131030': 'The recipient is not in the allowed list of this test number',
  '131031': 'The business account is locked',
  '131042': 'Business eligibility payment issue: check the payment method of the WhatsApp Business Account',
  '131047':
    'Re-engagement message: more than 24 hours have passed since the customer last wrote; only an approved template can be sent now',
  '131049': 'Not delivered to maintain a healthy ecosystem (per-user marketing limit)',
  '131051': 'Unsupported message type',
  '131052': 'The media could not be downloaded from the sender',
  '131053': 'The media could not be uploaded: check its type and size',
  '131056': 'Pair rate limit: too many messages to this customer in a short time',
  '130429': 'Throughput rate limit of the business number reached',
  '130472': "The customer's number is part of an experiment and did not get the marketing message",
  '131048': 'Spam rate limit: too many messages were blocked or reported',
  '133010': 'The business phone number is not registered on the Cloud API',
  '368': 'The business account is temporarily blocked for policy violations',
};

/** One `errors[]` item (webhook) or Graph API `error` object, as a code and a readable message. */
export function errorOf(e: unknown): { code?: string; message: string } {
  const code = str(e, 'code');
  const details = str(obj(e, 'error_data'), 'details');
  const title = str(e, 'title') ?? str(e, 'message');
  return compact({ code, message: describeError(code, details ?? title) });
}

/** "WhatsApp error 131047: <reason>", with Meta's words when it sent any, else the table's. */
export function describeError(code: string | undefined, metaMessage?: string): string {
  const reason =
    (code ? ERROR_REASONS[code] : undefined) ?? metaMessage ?? 'WhatsApp reported the message as failed';
  const detail =
    metaMessage && code && ERROR_REASONS[code] && metaMessage !== reason ? ` (${metaMessage})` : '';
  return code ? `WhatsApp error ${code}: ${reason}${detail}` : reason;
}

/** Drops undefined members, so stored meta has no `undefined` holes. */
function compact<T extends Record<string, unknown>>(o: T): { [K in keyof T]: Exclude<T[K], undefined> } {
  for (const key of Object.keys(o)) if (o[key] === undefined) delete o[key];
  return o as { [K in keyof T]: Exclude<T[K], undefined> };
}
