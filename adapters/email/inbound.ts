/**
 * @module Pure mapping from a received mail to what the gateway stores. Both inbound paths (the SMTP
 * listener and the Mailgun route) first build a {@link MailInput}; {@link normalizeMail} then picks the
 * text the bot sees (quoted history and signatures stripped), the ids used for threading and dedupe,
 * and whether the mail is automated (auto-replies, bounces, lists: stored, never answered).
 */
import { createHash } from 'node:crypto';
import EmailReplyParser from 'email-reply-parser';
import type { AddressObject, ParsedMail } from 'mailparser';
import type { AcceptRule } from './config.js';
import { replyTokenOf } from './verify.js';

/** One attachment as received. */
export interface MailAttachmentInput {
  filename?: string;
  contentType: string;
  content: Buffer;
}

/** A received mail in a shape both inbound paths can produce. */
export interface MailInput {
  /** Header fields in their original order: lower-case name, unfolded value. */
  headers: ReadonlyArray<readonly [string, string]>;
  messageId?: string;
  inReplyTo?: string;
  references: string[];
  from?: { address: string; name?: string };
  /** `To`, `Cc` and `Delivered-To` addresses (reply tokens may be in any of them). */
  recipients: string[];
  subject: string;
  date?: string;
  /** The full plain text; readable text made from the HTML when the mail had no text part. */
  text: string;
  attachments: MailAttachmentInput[];
  /** SMTP envelope: `mailFrom` null is the null sender `<>`; undefined when the path does not know it. */
  envelope: { mailFrom?: string | null; rcptTo: string[] };
}

/** Why a mail is refused for good (SMTP 5xx, Mailgun 406); never stored. */
export class MailRejected extends Error {
  readonly reason: string;
  constructor(reason: string, message: string) {
    super(message);
    this.name = 'MailRejected';
    this.reason = reason;
  }
}

/** The delivery failure a DSN reports (RFC 3464). */
export interface BounceInfo {
  /** `Message-ID`s of the returned messages (ours, when the bounce is for a gateway answer). */
  originalMessageIds: string[];
  /** True when the DSN reports a permanent failure (`Action: failed` or a 5.x.x status). */
  failed: boolean;
  /** RFC 3463 status, e.g. `5.1.1`. */
  status?: string;
  /** The remote server's words, e.g. `550 5.1.1 User unknown`. */
  diagnostic?: string;
}

export interface NormalizedMail {
  /** `<id@host>` when the mail had a usable `Message-ID`. */
  messageId?: string;
  /** `mid:<Message-ID>`, or `sha256:<content hash>` when the mail has none. */
  dedupeKey: string;
  /** The conversation key when this mail starts a new thread. */
  rootRef: string;
  /** Ids to look the thread up by: `In-Reply-To`, then `References` newest first. */
  threadIds: string[];
  /** Reply tokens found in accepted recipient addresses. */
  tokens: string[];
  from: { address: string; name?: string };
  subject: string;
  /** What the bot sees: the new text, without quoted history and signatures. */
  visibleText: string;
  fullText: string;
  /** Set when the mail is automated; the signal that said so. */
  automated?: string;
  bounce?: BounceInfo;
  attachments: Array<{ name: string; contentType: string; content: Buffer }>;
  /** Stored as the message's `meta.email`. */
  meta: Record<string, unknown>;
}

const MESSAGE_ID_RE = /<[^<>\s]{1,250}>/g;
/** At most this many thread ids are looked up; long `References` keep their newest entries. */
const MAX_THREAD_IDS = 20;

/** Removes CR and LF (header injection) and trims. */
export function oneLine(value: string): string {
  return value.replace(/[\r\n]+/g, ' ').trim();
}

/** Every `<id>` in a header value (References may hold many; mailparser gives a string or an array). */
export function messageIds(value: string | string[] | undefined | null): string[] {
  if (!value) return [];
  const joined = Array.isArray(value) ? value.join(' ') : value;
  return [...joined.matchAll(MESSAGE_ID_RE)].map((m) => m[0]);
}

function firstAddress(
  obj: AddressObject | AddressObject[] | undefined,
): Array<{ address: string; name?: string }> {
  const list = Array.isArray(obj) ? obj : obj ? [obj] : [];
  return list.flatMap((o) =>
    o.value
      .filter((v) => v.address)
      .map((v) => ({ address: v.address!, ...(v.name ? { name: v.name } : {}) })),
  );
}

/** The unfolded value after the first colon of a raw header line. */
function headerValue(line: string): string {
  const colon = line.indexOf(':');
  return (colon < 0 ? '' : line.slice(colon + 1)).replace(/\r?\n[ \t]+/g, ' ').trim();
}

/** Builds a {@link MailInput} from mailparser's `simpleParser` output and the SMTP envelope. */
export function fromParsedMail(parsed: ParsedMail, envelope: MailInput['envelope']): MailInput {
  const headers = parsed.headerLines.map((h) => [h.key.toLowerCase(), headerValue(h.line)] as const);
  const deliveredTo = headers.filter(([k]) => k === 'delivered-to').flatMap(([, v]) => messageAddress(v));
  const from = firstAddress(parsed.from)[0];
  return {
    headers,
    messageId: messageIds(parsed.messageId)[0],
    inReplyTo: messageIds(parsed.inReplyTo)[0],
    references: messageIds(parsed.references),
    ...(from ? { from } : {}),
    recipients: [...firstAddress(parsed.to), ...firstAddress(parsed.cc)]
      .map((a) => a.address)
      .concat(deliveredTo),
    subject: parsed.subject ?? '',
    ...(parsed.date ? { date: parsed.date.toISOString() } : {}),
    // mailparser fills `text` from the HTML (html-to-text) when there is no text/plain part.
    text: parsed.text ?? '',
    attachments: parsed.attachments.map((a) => ({
      ...(a.filename ? { filename: a.filename } : {}),
      contentType: a.contentType,
      content: a.content,
    })),
    envelope,
  };
}

/** Bare addresses in a header value such as `Name <a@b>, c@d`. */
export function messageAddress(value: string): string[] {
  return [...value.matchAll(/[^\s<>,;:"()]+@[^\s<>,;:"()]+/g)].map((m) => m[0]);
}

function header(input: MailInput, name: string): string | undefined {
  return input.headers.find(([k]) => k === name)?.[1];
}

/**
 * The loop signal that marks `input` as automated, or undefined for a person's mail. Signals from
 * RFC 3834 §2 and §5 and the checklist in CHANNELS.md §3.7 (https://www.arp242.net/autoreply.html);
 * any one of them is enough. Mail from our own address is a loop too.
 */
export function automatedReason(
  input: MailInput,
  isOwnAddress: (address: string) => boolean,
): string | undefined {
  const get = (name: string) => header(input, name);
  const contentType = get('content-type')?.toLowerCase() ?? '';
  const fromLocal = input.from?.address.split('@')[0]?.toLowerCase() ?? '';
  if (contentType.startsWith('multipart/report')) return 'report';
  if (fromLocal === 'mailer-daemon' || fromLocal === 'postmaster') return 'mailer-daemon';
  const autoSubmitted = get('auto-submitted');
  // "auto-generated (warning-timeout)", "auto-replied; foo": only the keyword before a comment counts.
  if (autoSubmitted !== undefined && autoSubmitted.split(/[;(\s]/, 1)[0]!.toLowerCase() !== 'no')
    return 'auto-submitted';
  if (get('x-auto-response-suppress') !== undefined) return 'x-auto-response-suppress';
  if (['list-id', 'list-unsubscribe', 'feedback-id'].some((h) => get(h) !== undefined)) return 'mailing-list';
  if (['bulk', 'junk', 'list', 'auto_reply'].includes(get('precedence')?.toLowerCase() ?? ''))
    return 'precedence';
  if (
    ['x-autoreply', 'x-autorespond', 'x-auto-reply', 'x-autoreply-from'].some((h) => get(h) !== undefined)
  ) {
    return 'x-autoreply';
  }
  if (input.envelope.mailFrom === null || get('return-path')?.replace(/\s/g, '') === '<>')
    return 'null-sender';
  if (input.from && isOwnAddress(input.from.address)) return 'own-address';
  return undefined;
}

/** Reads a DSN (RFC 3464): the per-recipient fields and the returned message's id. */
export function parseBounce(input: MailInput): BounceInfo {
  const statusTexts = [
    input.text,
    ...input.attachments
      .filter((a) => /^message\/(global-)?delivery-status$/i.test(a.contentType))
      .map((a) => a.content.toString('utf8')),
  ].join('\n');
  const returned = input.attachments
    .filter((a) => /^(text\/rfc822-headers|message\/(global-)?rfc822(-headers)?)$/i.test(a.contentType))
    .map((a) => a.content.toString('utf8'));
  const originalMessageIds = [
    ...new Set([
      ...returned.flatMap((h) => messageIds(/^Message-ID:[ \t]*(.*)$/im.exec(h)?.[1])),
      ...messageIds(input.inReplyTo),
      ...input.references,
    ]),
  ];
  const action = /^Action:[ \t]*(\S+)/im.exec(statusTexts)?.[1]?.toLowerCase();
  const status = /^Status:[ \t]*([245]\.\d{1,3}\.\d{1,3})/im.exec(statusTexts)?.[1];
  // "Diagnostic-Code: smtp; 550 5.1.1 User unknown": the type prefix is dropped (RFC 3464 §2.3.6).
  const diagnostic = /^Diagnostic-Code:[ \t]*(?:[\w-]+;[ \t]*)?(.+)$/im.exec(statusTexts)?.[1]?.trim();
  const failed = action === 'failed' || (action === undefined && status?.startsWith('5') === true);
  return {
    originalMessageIds,
    failed,
    ...(status ? { status } : {}),
    ...(diagnostic ? { diagnostic: oneLine(diagnostic).slice(0, 500) } : {}),
  };
}

/**
 * The new text of a reply: quoted history ("On … wrote:" and `>` lines, Outlook "Original Message"
 * blocks) and signatures ("-- ", "Sent from my phone") removed with email-reply-parser. Interleaved
 * answers lose their quoted context (CHANNELS.md §3.8); the full text is kept in the meta.
 */
export function visibleText(text: string): string {
  const normalized = text.replace(/\r\n?/g, '\n');
  return new EmailReplyParser().read(normalized).getVisibleText().trim();
}

/** A file name safe for a `Content-Disposition` header and a download: no paths, no control characters. */
export function safeFilename(name: string | undefined, index: number): string {
  const base = (name ?? '')
    .replace(/[\\/]/g, '_')
    .replace(/[\p{Cc}"]/gu, '')
    .trim()
    .slice(0, 200);
  return base || `attachment-${index + 1}`;
}

/** A bare `type/subtype` (parameters dropped), or `application/octet-stream` when it is not one. */
export function safeContentType(value: string): string {
  const type = value.split(';', 1)[0]!.trim().toLowerCase();
  return /^[a-z0-9][\w.+-]*\/[\w.+-]+$/.test(type) ? type : 'application/octet-stream';
}

function contentHash(input: MailInput): string {
  const h = createHash('sha256');
  h.update(JSON.stringify([input.from?.address, input.subject, input.date, input.text, input.recipients]));
  for (const a of input.attachments) h.update(createHash('sha256').update(a.content).digest());
  return h.digest('hex');
}

export interface NormalizeOptions {
  /** The accept rules: reply tokens are read from accepted `mailbox+token` recipients only. */
  accept: readonly AcceptRule[];
  /** True for the gateway's own sending address (mail from it is a loop). */
  isOwnAddress(address: string): boolean;
}

/**
 * Maps a received mail to what is stored.
 * @throws MailRejected when the mail has no usable `From` address (RFC 5322 §3.6 requires one; garbage
 * that is not a message at all ends here too).
 */
export function normalizeMail(input: MailInput, opts: NormalizeOptions): NormalizedMail {
  const fromAddress = input.from?.address ? messageAddress(input.from.address)[0] : undefined;
  if (!fromAddress) throw new MailRejected('no_from', 'The message has no valid From address');
  const from = {
    address: oneLine(fromAddress),
    ...(input.from?.name ? { name: oneLine(input.from.name) } : {}),
  };
  const automated = automatedReason(input, opts.isOwnAddress);
  const isReport = automated === 'report' || automated === 'mailer-daemon';
  const bounce = isReport ? parseBounce(input) : undefined;
  const fullText = input.text.replace(/\r\n?/g, '\n').trim();
  const stripped = automated ? fullText : visibleText(fullText);
  const attachments = input.attachments.map((a, i) => ({
    name: safeFilename(a.filename, i),
    contentType: safeContentType(a.contentType),
    content: a.content,
  }));
  // A reply that is only a quote (or a stripper that removed everything) keeps its full text.
  const text = stripped || (attachments.length > 0 ? '' : fullText);
  const hash = input.messageId ? undefined : contentHash(input);
  const threadIds = [
    ...new Set(
      [...messageIds(input.inReplyTo), ...[...input.references].reverse()].filter(
        (id) => id !== input.messageId,
      ),
    ),
  ].slice(0, MAX_THREAD_IDS);
  const tokens = [
    ...new Set(
      [...input.envelope.rcptTo, ...input.recipients]
        .map((a) => replyTokenOf(a, opts.accept))
        .filter((t): t is string => t !== null),
    ),
  ];
  const subject = oneLine(input.subject);
  return {
    ...(input.messageId ? { messageId: input.messageId } : {}),
    dedupeKey: input.messageId ? `mid:${input.messageId}` : `sha256:${hash}`,
    rootRef: input.messageId ?? `sha256:${hash}`,
    threadIds,
    tokens,
    from,
    subject,
    visibleText: text,
    fullText,
    ...(automated ? { automated } : {}),
    ...(bounce ? { bounce } : {}),
    attachments,
    meta: {
      messageId: input.messageId ?? null,
      inReplyTo: input.inReplyTo ?? null,
      references: input.references,
      subject,
      from: from.address,
      to: input.recipients,
      date: input.date ?? null,
      fullText,
      ...(automated ? { automated } : {}),
      ...(bounce ? { bounce } : {}),
    },
  };
}
