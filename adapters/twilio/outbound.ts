/**
 * @module Sending through Twilio's Programmable Messaging REST API with the twilio package's own client.
 * The client has no base-URL option, so a {@link ForwardingRequestClient} (twilio's `RequestClient`
 * with the origin rewritten) sends its requests to `TWILIO_API_URL` and retries 429, 5xx and connection
 * failures with backoff, honouring `Retry-After`. A reply goes out from the number the customer wrote
 * to, with a status callback; long texts are split on paragraph, sentence or word boundaries.
 */
import type { Logger } from 'pino';
import twilio from 'twilio';
import {
  type Attachment,
  type ChannelName,
  type Conversation,
  fullJitter,
  type Message,
  PermanentSendError,
  parseRetryAfter,
  type SendResult,
  sleep,
} from '../../src/core/index.js';
import { templateOf } from '../../src/whatsapp/window.js';
import { bareAddress, describeError, parseChannelRef, WHATSAPP_PREFIX } from './inbound.js';
import { KeepAliveTransport } from './transport.js';

/**
 * Longest `Body` per message. Twilio's Messages resource takes up to 1,600 characters on every channel
 * (error 21617); WhatsApp itself allows 4,096, but Twilio's documented cap is the one requests must meet.
 */
export const BODY_LIMIT: Readonly<Record<'sms' | 'whatsapp', number>> = { sms: 1600, whatsapp: 1600 };

/** Media per message: MMS carries up to 10 `MediaUrl`s; a WhatsApp message carries one. */
const MEDIA_PER_MESSAGE: Readonly<Record<'sms' | 'whatsapp', number>> = { sms: 10, whatsapp: 1 };

/** WhatsApp media captions are limited to 1,024 characters; a longer text goes in its own message. */
const CAPTION_LIMIT: Readonly<Record<'sms' | 'whatsapp', number>> = { sms: 1600, whatsapp: 1024 };

/** Retry policy for the REST API. */
export interface RetryPolicy {
  /** Attempts per request, the first included. @default 4 */
  attempts: number;
  /** Base of the exponential full-jitter backoff. @default 500 */
  baseMs: number;
  /** Cap of one backoff delay. @default 8000 */
  capMs: number;
  /**
   * Longest `Retry-After` honoured; a longer one ends the retries at once, since a message that late
   * holds up the rest of its conversation. @default 20000
   */
  maxRetryAfterMs: number;
  /** Per-attempt timeout. A timed-out create is not retried: Twilio may have accepted it. @default 15000 */
  timeoutMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = {
  attempts: 4,
  baseMs: 500,
  capMs: 8_000,
  maxRetryAfterMs: 20_000,
  timeoutMs: 15_000,
};

/**
 * Connection errors worth another attempt. ECONNREFUSED, ENOTFOUND, EAI_AGAIN and EHOSTUNREACH mean the
 * request never reached Twilio. ECONNRESET is what a stale keep-alive socket gives; it can, rarely, follow
 * a request Twilio did accept, and a duplicate text is the lesser harm than a reply never sent.
 */
const RETRYABLE_NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
]);

type RequestOptions<TData> = Parameters<twilio.RequestClient['request']>[0] & { data?: TData };
type RequestResponse<TData> = Awaited<ReturnType<twilio.RequestClient['request']>> & { body: TData };

/**
 * twilio's `RequestClient` contract, pointed at `baseUrl`, sending over {@link KeepAliveTransport}
 * and retrying transient failures. Passed to the twilio client as `httpClient` (the documented hook,
 * CHANNELS.md §1.6); everything above it (the resources, parameters, error parsing into
 * `RestException`) stays the library's. It extends the library's class for its type only: no request
 * goes through the class's own axios-based `request`.
 */
export class ForwardingRequestClient extends twilio.RequestClient {
  readonly #base: URL;
  readonly #policy: RetryPolicy;
  readonly #logger: Logger;
  readonly #transport: KeepAliveTransport;

  constructor(baseUrl: string, logger: Logger, policy: RetryPolicy = DEFAULT_RETRY) {
    super({ timeout: policy.timeoutMs, keepAlive: true });
    this.#base = new URL(baseUrl);
    this.#policy = policy;
    this.#logger = logger;
    this.#transport = new KeepAliveTransport({ timeoutMs: policy.timeoutMs });
  }

  /** Closes the idle keep-alive connections. */
  close(): void {
    this.#transport.close();
  }

  /** The library's URI with its origin replaced by the base URL's (and the base path prefixed). */
  rewrite(uri: string): string {
    const target = new URL(uri);
    const prefix = this.#base.pathname.replace(/\/+$/, '');
    return `${this.#base.origin}${prefix}${target.pathname}${target.search}`;
  }

  override async request<TData>(opts: RequestOptions<TData>): Promise<RequestResponse<TData>> {
    const forwarded: RequestOptions<TData> = { ...opts, uri: this.rewrite(opts.uri) };
    const { attempts, baseMs, capMs, maxRetryAfterMs } = this.#policy;
    for (let attempt = 1; ; attempt++) {
      let response: RequestResponse<TData>;
      try {
        response = (await this.#transport.send(forwarded)) as unknown as RequestResponse<TData>;
      } catch (err) {
        const code = (err as { code?: string }).code;
        if (attempt >= attempts || !code || !RETRYABLE_NETWORK_CODES.has(code)) throw err;
        const delay = fullJitter(attempt, baseMs, capMs);
        this.#logger.info({ attempt, code, delayMs: delay }, 'Twilio API unreachable; retrying');
        await sleep(delay);
        continue;
      }
      const status = response.statusCode;
      if (status !== 429 && status < 500) return response;
      const retryAfter = parseRetryAfter(headerOf(response.headers, 'retry-after'));
      if (attempt >= attempts || (retryAfter !== undefined && retryAfter > maxRetryAfterMs)) {
        return response;
      }
      const delay = retryAfter ?? fullJitter(attempt, baseMs, capMs);
      this.#logger.info(
        { attempt, status, delayMs: delay },
        'Twilio API answered a transient error; retrying',
      );
      await sleep(delay);
    }
  }
}

/** Reads a header from a response's headers (Node's plain object, or an `AxiosHeaders` instance). */
function headerOf(headers: unknown, name: string): string | undefined {
  if (!headers || typeof headers !== 'object') return undefined;
  const h = headers as { get?: (n: string) => unknown } & Record<string, unknown>;
  const value = typeof h.get === 'function' ? h.get(name) : h[name];
  return value === undefined || value === null ? undefined : String(value);
}

/** One message for `POST /2010-04-01/Accounts/{sid}/Messages.json`. */
export interface CreateMessage {
  to: string;
  from: string;
  body?: string;
  mediaUrl?: string[];
  /** A Content API template (WhatsApp outside the 24-hour window), with its variables as JSON. */
  contentSid?: string;
  contentVariables?: string;
  statusCallback: string;
}

/** The narrow client the sender needs; the real one is {@link createMessagesClient}. */
export interface MessagesClient {
  create(params: CreateMessage): Promise<{ sid: string }>;
}

/** The twilio package's client, sending through {@link ForwardingRequestClient}. */
export function createMessagesClient(
  accountSid: string,
  authToken: string,
  apiUrl: string,
  logger: Logger,
  policy: RetryPolicy = DEFAULT_RETRY,
): MessagesClient {
  const client = twilio(accountSid, authToken, {
    httpClient: new ForwardingRequestClient(apiUrl, logger, policy),
    // Pinned so TWILIO_LOG_LEVEL=debug in the environment cannot print requests (customer texts) to stdout.
    // The origin rewrite likewise overrides any TWILIO_EDGE / TWILIO_REGION host the library derives.
    logLevel: 'info',
  });
  return { create: (params) => client.messages.create(params) };
}

/** One REST call's worth of a stored message. */
export interface Part {
  body?: string;
  mediaUrl?: string[];
}

/**
 * Splits text into parts of at most `limit` UTF-16 code units, breaking at the last paragraph, line,
 * sentence or word boundary in the second half of the window, and only as a last resort inside a word
 * (never inside a character: the cut falls on a grapheme boundary).
 */
export function splitText(text: string, limit: number): string[] {
  const parts: string[] = [];
  let rest = text.trim();
  while (rest.length > limit) {
    const cut = breakPoint(rest, limit);
    parts.push(rest.slice(0, cut).trimEnd());
    rest = rest.slice(cut).trimStart();
  }
  if (rest) parts.push(rest);
  return parts;
}

const SENTENCE_END = /[.!?…。！？]["'”’)\]]*(?=\s)/g;

function breakPoint(text: string, limit: number): number {
  const window = text.slice(0, limit + 1);
  const min = Math.floor(limit / 2);
  for (const sep of ['\n\n', '\n']) {
    const at = window.lastIndexOf(sep);
    if (at >= min) return at;
  }
  let sentence = -1;
  for (const m of window.matchAll(SENTENCE_END)) {
    const end = m.index + m[0].length;
    if (end <= limit) sentence = end;
  }
  if (sentence >= min) return sentence;
  const space = Math.max(window.lastIndexOf(' '), window.lastIndexOf('\t'));
  if (space >= min) return space;
  let cut = 0;
  for (const { index } of new Intl.Segmenter(undefined, { granularity: 'grapheme' }).segment(window)) {
    if (index > limit) break;
    cut = index;
  }
  // A single grapheme longer than the limit cannot happen at Twilio's sizes; cut anyway rather than loop.
  return cut > 0 ? cut : limit;
}

/**
 * Plans the REST calls for one stored message: its text split to the channel's limit, then its attachments in batches
 * the channel accepts; the first batch rides on the last text part when that part fits as a caption.
 */
export function planParts(
  channel: 'sms' | 'whatsapp',
  message: Pick<Message, 'text' | 'attachments'>,
): Part[] {
  // Quick replies arrive written into the text already (the channel has no buttons: src/channels/).
  const parts: Part[] = splitText(message.text ?? '', BODY_LIMIT[channel]).map((body) => ({ body }));
  const urls = mediaUrls(message.attachments ?? []);
  const batches: string[][] = [];
  for (let i = 0; i < urls.length; i += MEDIA_PER_MESSAGE[channel]) {
    batches.push(urls.slice(i, i + MEDIA_PER_MESSAGE[channel]));
  }
  const last = parts.at(-1);
  if (last?.body !== undefined && batches.length > 0 && last.body.length <= CAPTION_LIMIT[channel]) {
    last.mediaUrl = batches.shift();
  }
  for (const mediaUrl of batches) parts.push({ mediaUrl });
  return parts;
}

/** Twilio fetches media itself, so each attachment must be an absolute public http(s) URL. */
function mediaUrls(attachments: Attachment[]): string[] {
  return attachments.map((a) => {
    if (!/^https?:\/\//i.test(a.url)) {
      throw new PermanentSendError(
        `Attachment URL ${JSON.stringify(a.url)} is not an absolute http(s) URL that Twilio can fetch`,
        'GW_TWILIO_BAD_MEDIA',
      );
    }
    return a.url;
  });
}

/** Our number and the customer's, each in the form Twilio expects for the channel. */
export interface Route {
  from: string;
  to: string;
}

/**
 * Where a reply goes: from the number the customer wrote to, to the customer. Conversations started by
 * an inbound message carry both in `channelRef`; ones created through the API name them as participants
 * (the `user`'s and the `bot`'s `address`).
 */
export function routeOf(conversation: Pick<Conversation, 'channel' | 'channelRef' | 'participants'>): Route {
  const parsed = parseChannelRef(conversation.channelRef);
  const ours = parsed?.ours ?? conversation.participants.find((p) => p.role === 'bot')?.address;
  const customer = parsed?.customer ?? conversation.participants.find((p) => p.role === 'user')?.address;
  if (!ours || !customer) {
    throw new PermanentSendError(
      'The conversation names no Twilio number and customer number: expected a channelRef "<our number>|<customer number>" or participants with role bot and user carrying an address',
      'GW_TWILIO_NO_ROUTE',
    );
  }
  return { from: address(conversation.channel, ours), to: address(conversation.channel, customer) };
}

function address(channel: ChannelName, value: string): string {
  return channel === 'whatsapp' ? `${WHATSAPP_PREFIX}${bareAddress(value)}` : value;
}

export interface SenderDeps {
  messages: MessagesClient;
  /** `PUBLIC_URL/webhooks/twilio/status`. */
  statusCallback: string;
  /** Maps a returned SID to the stored message, so status callbacks for every part find it. */
  remember(sid: string): Promise<void>;
  logger: Logger;
  /** Waits for the sender's next send slot (TWILIO_SEND_RATE_PER_SEC); absent when pacing is off. */
  pace?: (from: string) => Promise<void>;
}

/**
 * Sends one stored message, part by part, in order. Returns the first part's SID as the message's
 * `externalId`; every part's SID is remembered, so any part's status callback moves the message.
 * @throws PermanentSendError with Twilio's error code when Twilio refuses a part or keeps failing.
 */
export async function sendMessage(
  deps: SenderDeps,
  conversation: Conversation,
  message: Message,
): Promise<SendResult> {
  if (conversation.channel !== 'sms' && conversation.channel !== 'whatsapp') {
    throw new PermanentSendError(
      `Twilio cannot send on the ${conversation.channel} channel`,
      'GW_TWILIO_CHANNEL',
    );
  }
  const route = routeOf(conversation);
  const template = templateOf(message);
  // A template is one message of its own: Twilio renders it from the Content SID and the variables.
  const parts: Array<Part | Pick<CreateMessage, 'contentSid' | 'contentVariables'>> =
    template && 'contentSid' in template
      ? [
          {
            contentSid: template.contentSid,
            ...(template.variables ? { contentVariables: JSON.stringify(template.variables) } : {}),
          },
        ]
      : planParts(conversation.channel, message);
  if (parts.length === 0) {
    throw new PermanentSendError(
      'Nothing to send: the message has no text and no attachments',
      'GW_TWILIO_EMPTY',
    );
  }
  const sids: string[] = [];
  for (const [i, part] of parts.entries()) {
    let sid: string;
    await deps.pace?.(route.from);
    try {
      ({ sid } = await deps.messages.create({ ...route, ...part, statusCallback: deps.statusCallback }));
    } catch (err) {
      throw toSendError(err, i, parts.length);
    }
    sids.push(sid);
    await deps.remember(sid);
  }
  deps.logger.debug({ messageId: message.id, sids }, 'sent through Twilio');
  return { externalId: sids[0], status: 'sent', remembered: true };
}

/** A REST failure as a PermanentSendError carrying Twilio's code and a readable reason. */
function toSendError(err: unknown, sent: number, total: number): Error {
  const progress = sent > 0 ? ` (${sent} of ${total} parts were sent before this)` : '';
  if (err instanceof twilio.RestException) {
    const code = err.code === undefined || err.code === null ? undefined : String(err.code);
    const transient = err.status === 429 || err.status >= 500;
    const reason = describeError(code, err.message || undefined, `Twilio answered HTTP ${err.status}`);
    const prefix = transient ? 'Gave up on a transient error: ' : '';
    return new PermanentSendError(`${prefix}${reason}${progress}`, code, { cause: err });
  }
  return new PermanentSendError(
    `Could not reach the Twilio API: ${(err as Error).message}${progress}`,
    (err as { code?: string }).code,
    { cause: err },
  );
}
