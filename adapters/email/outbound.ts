/**
 * @module Outbound mail with nodemailer over `SMTP_URL`. Each answer is a reply in the customer's
 * thread (RFC 5322 §3.6.4): `Re:` subject, our own `Message-ID`, `In-Reply-To` the customer's message
 * and `References` its chain; `Reply-To` carries the conversation's reply token; `Auto-Submitted:
 * auto-replied` and `X-Auto-Response-Suppress: All` keep vacation responders from answering (RFC 3834
 * §5). Every header value is stripped of CR/LF where it is assigned (no header injection).
 * Transient SMTP failures (4xx, connection errors) are retried with backoff; a 5xx ends the message
 * `failed` with the server's reply.
 * The SMTP envelope sender is the message's own VERP address (`bounces+<id>-<hmac>@domain`), so a
 * delivery report can be tied to the one message it is about (receive.ts).
 */
import type Mail from 'nodemailer/lib/mailer/index.js';
import type SMTPTransport from 'nodemailer/lib/smtp-transport/index.js';
import {
  type Conversation,
  type Message,
  PermanentSendError,
  type SendResult,
  type Store,
} from '../../src/core/index.js';
import { type MailAddress, parseAddress } from './config.js';
import { messageIds, oneLine } from './inbound.js';
import type { ThreadIndex } from './threading.js';
import { bounceAddress } from './verify.js';

/** What the sender needs from nodemailer: one call (a `Transporter`, or a test double). */
export interface MailTransport {
  sendMail(mail: Mail.Options): Promise<{ messageId?: string; response?: string }>;
}

/** Longest `References` sent; older ids in between are dropped, keeping the root (RFC 5322 §3.6.4 allows trimming). */
const MAX_REFERENCES = 20;

/** Pauses before the 2nd, 3rd and 4th attempt of a transient failure. */
export const DEFAULT_RETRY_DELAYS_MS = [1_000, 5_000, 15_000] as const;

/**
 * nodemailer SMTP options from `SMTP_URL`, as nodemailer itself reads a connection URL (query
 * parameters become options, `tls.*` nested), plus timeouts shorter than nodemailer's defaults
 * (2 min to connect, 10 min idle) so a dead relay does not hold a conversation for minutes.
 */
export function transportOptions(url: string): SMTPTransport.Options {
  const u = new URL(url);
  const options: Record<string, unknown> & { tls?: Record<string, unknown> } = {
    host: u.hostname.replace(/^\[|\]$/g, ''),
    secure: u.protocol === 'smtps:',
    connectionTimeout: 10_000,
    greetingTimeout: 10_000,
    socketTimeout: 30_000,
  };
  if (u.port) options.port = Number(u.port);
  if (u.username)
    options.auth = { user: decodeURIComponent(u.username), pass: decodeURIComponent(u.password) };
  for (const [key, raw] of u.searchParams) {
    const value: unknown =
      raw === 'true'
        ? true
        : raw === 'false'
          ? false
          : raw !== '' && !Number.isNaN(Number(raw))
            ? Number(raw)
            : raw;
    if (key.startsWith('tls.')) options.tls = { ...options.tls, [key.slice(4)]: value };
    else options[key] = value;
  }
  return options as SMTPTransport.Options;
}

/** `Re: <subject>`, never `Re: Re:` (also folds `RE:`, `Aw:`, `Sv:` prefixes). */
export function replySubject(subject: string): string {
  const base = oneLine(subject).replace(/^((re|aw|sv|antw)\s*(\[\d+\])?\s*:\s*)+/i, '');
  return `Re: ${base || '(no subject)'}`;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The customer's message being answered, as far as threading needs it. */
export interface ThreadParent {
  messageId?: string;
  inReplyTo?: string;
  references: string[];
  subject: string;
}

export interface BuildMailInput {
  from: MailAddress;
  /** The agent writing (SPEC §8): shown as "<agent> via <EMAIL_FROM's name>" in the From header. */
  agentName?: string;
  to: { address: string; name?: string };
  /** The conversation's other user participants (reply-all). */
  cc?: ReadonlyArray<{ address: string; name?: string }>;
  replyToken: string;
  messageId: string;
  parent: ThreadParent | null;
  subject: string;
  text: string;
  attachments?: ReadonlyArray<{ url: string; name?: string }>;
  /** The SMTP envelope sender (our VERP bounce address for this message). */
  bounceAddress?: string;
}

/**
 * The From display name: the agent's "<agent> via <gateway name>" (or the agent's alone when EMAIL_FROM
 * has no name), else EMAIL_FROM's own name.
 * @example senderName('Support', 'Ana') // 'Ana via Support'
 */
export function senderName(
  gatewayName: string | undefined,
  agentName: string | undefined,
): string | undefined {
  const agent = agentName ? oneLine(agentName).trim() : '';
  if (!agent) return gatewayName;
  return gatewayName ? `${agent} via ${gatewayName}` : agent;
}

function mailbox(r: { address: string; name?: string }): string | { name: string; address: string } {
  return r.name ? { name: oneLine(r.name), address: oneLine(r.address) } : oneLine(r.address);
}

/** The nodemailer message for one answer (pure). */
export function buildMail(input: BuildMailInput): Mail.Options {
  const { from, parent } = input;
  const [local, domain] = [from.address.slice(0, from.address.lastIndexOf('@')), from.domain];
  // RFC 5322 §3.6.4: the parent's References (or, lacking those, its In-Reply-To), then its Message-ID.
  let references = parent
    ? [
        ...(parent.references.length > 0 ? parent.references : messageIds(parent.inReplyTo)),
        ...messageIds(parent.messageId),
      ]
    : [];
  references = [...new Set(references.map(oneLine))];
  if (references.length > MAX_REFERENCES)
    references = [references[0]!, ...references.slice(-(MAX_REFERENCES - 1))];
  const links = (input.attachments ?? []).map((a) => `- ${oneLine(a.name ?? a.url)}: ${oneLine(a.url)}`);
  const text = links.length > 0 ? `${input.text}\n\n${links.join('\n')}` : input.text;
  const name = from.name ? oneLine(from.name) : undefined;
  const shown = senderName(name, input.agentName);
  const cc = (input.cc ?? []).map(mailbox);
  return {
    from: shown ? { name: shown, address: from.address } : from.address,
    to: mailbox(input.to),
    ...(cc.length > 0 ? { cc } : {}),
    replyTo: {
      name: name ?? '',
      address: `${local}+${oneLine(input.replyToken)}@${domain}`,
    },
    subject: replySubject(input.subject),
    messageId: oneLine(input.messageId),
    ...(parent?.messageId ? { inReplyTo: oneLine(parent.messageId) } : {}),
    ...(references.length > 0 ? { references } : {}),
    ...(input.bounceAddress
      ? {
          envelope: {
            from: oneLine(input.bounceAddress),
            to: [input.to, ...(input.cc ?? [])].map((r) => oneLine(r.address)),
          },
        }
      : {}),
    headers: { 'Auto-Submitted': 'auto-replied', 'X-Auto-Response-Suppress': 'All' },
    text,
    html: `<div>${escapeHtml(text).replace(/\r?\n/g, '<br>\n')}</div>`,
  };
}

/** True when an SMTP error is worth retrying: a 4xx reply, or no reply at all (network, timeout). */
export function isTransient(err: unknown): boolean {
  const e = err as { responseCode?: number; code?: string };
  if (typeof e.responseCode === 'number') return e.responseCode >= 400 && e.responseCode < 500;
  return ['ECONNECTION', 'ETIMEDOUT', 'ESOCKET', 'EDNS', 'ECONNREFUSED', 'ECONNRESET', 'EPIPE'].includes(
    e.code ?? '',
  );
}

/**
 * Sends with retries on transient failures.
 * @throws PermanentSendError on a permanent failure, with the server's reply as the message.
 * @throws the last error when every attempt failed transiently.
 */
export async function sendWithRetry(
  transport: MailTransport,
  mail: Mail.Options,
  delaysMs: readonly number[] = DEFAULT_RETRY_DELAYS_MS,
  sleep: (ms: number) => Promise<void> = (ms) => new Promise((r) => setTimeout(r, ms)),
): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await transport.sendMail(mail);
      return;
    } catch (err) {
      const e = err as Error & { responseCode?: number; response?: string; code?: string };
      if (!isTransient(err)) {
        throw new PermanentSendError(
          oneLine(e.response ?? e.message),
          e.responseCode ? `SMTP_${e.responseCode}` : (e.code ?? 'SMTP_ERROR'),
          {
            cause: err,
          },
        );
      }
      const delay = delaysMs[attempt];
      if (delay === undefined) throw err;
      await sleep(delay);
    }
  }
}

export interface EmailSenderDeps {
  from: MailAddress;
  store: Store;
  threads: ThreadIndex;
  transport: MailTransport;
  /** HMAC key of the VERP bounce addresses. */
  bounceSecret: string;
  isOwnAddress(address: string): boolean;
  retryDelaysMs?: readonly number[];
}

interface EmailMeta {
  messageId?: string | null;
  inReplyTo?: string | null;
  references?: string[];
  subject?: string;
  from?: string;
}

function emailMeta(m: Message | null | undefined): EmailMeta | null {
  const meta = m?.meta?.email;
  return meta && typeof meta === 'object' ? (meta as EmailMeta) : null;
}

export class EmailSender {
  readonly #deps: EmailSenderDeps;

  constructor(deps: EmailSenderDeps) {
    this.#deps = deps;
  }

  /** The customer message this one answers: its `replyTo`, else the latest inbound mail of the conversation. */
  async #parentOf(conversation: Conversation, message: Message): Promise<Message | null> {
    const { store } = this.#deps;
    if (message.replyTo) {
      const parent = await store.getMessage(conversation.id, message.replyTo);
      if (emailMeta(parent)) return parent;
    }
    const recent = await store.listMessages(conversation.id, { take: 50, order: 'desc', type: 'user' });
    return recent.items.find((m) => m.direction === 'inbound' && emailMeta(m)) ?? null;
  }

  /**
   * The thread's ids before `parent`, oldest first (the root, then the newest ones up to
   * {@link MAX_REFERENCES}), for a parent that carried no `References` of its own: a mail that joined
   * by the reply token still gets the whole chain, so clients keep the thread together.
   */
  async #threadChain(conversation: Conversation, parent: Message, meta: EmailMeta): Promise<string[]> {
    const { store } = this.#deps;
    const [first, latest] = await Promise.all([
      // The root is the first mail, though an activity (a participant change, say) may come first.
      store.listMessages(conversation.id, { take: 5, order: 'asc' }),
      store.listMessages(conversation.id, { take: 100, order: 'desc' }),
    ]);
    const idOf = (m: Message): string | undefined => {
      if (m.seq >= parent.seq) return undefined;
      if (m.direction === 'inbound' && m.type === 'user') return emailMeta(m)?.messageId ?? undefined;
      if (m.direction === 'outbound' && m.externalId?.startsWith('<')) return m.externalId;
      return undefined;
    };
    const seen = new Map<number, string>();
    for (const m of [...first.items, ...latest.items]) {
      const id = idOf(m);
      if (id) seen.set(m.seq, id);
    }
    const chain = [...seen.entries()].sort((a, b) => a[0] - b[0]).map(([, id]) => id);
    const inReplyTo = messageIds(meta.inReplyTo)[0];
    if (inReplyTo && !chain.includes(inReplyTo)) chain.push(inReplyTo);
    return chain;
  }

  async send(conversation: Conversation, message: Message): Promise<SendResult> {
    const { from, threads } = this.#deps;
    const parent = await this.#parentOf(conversation, message);
    const meta = emailMeta(parent);
    const convMeta = (conversation.meta.email ?? {}) as { subject?: string; address?: string };
    const customer = conversation.participants.find((p) => p.role === 'user' && p.address);
    const to = parseAddress(meta?.from ?? convMeta.address ?? customer?.address ?? '');
    if (!to)
      throw new PermanentSendError('The conversation has no customer email address', 'EMAIL_NO_RECIPIENT');
    if (this.#deps.isOwnAddress(to.address)) {
      throw new PermanentSendError('Refusing to mail the gateway its own address (mail loop)', 'EMAIL_LOOP');
    }
    const thread = { ref: conversation.channelRef, addr: to.address.toLowerCase() };
    const messageId = `<${message.id}@${from.domain}>`;
    const replyToken = await threads.tokenFor(conversation.id, thread);
    // Indexed before sending, so a reply or bounce that arrives at once already finds its thread.
    await threads.remember(messageId, thread);
    // Reply-all (SPEC §8): every other user participant with an address, never the gateway itself.
    const seen = new Set([to.address.toLowerCase()]);
    const cc: Array<{ address: string; name?: string }> = [];
    for (const p of conversation.participants) {
      const address = p.role === 'user' ? p.address && parseAddress(p.address)?.address : undefined;
      if (!address || seen.has(address.toLowerCase()) || this.#deps.isOwnAddress(address)) continue;
      seen.add(address.toLowerCase());
      cc.push({ address, ...(p.name ? { name: p.name } : {}) });
    }
    const mail = buildMail({
      from,
      ...(message.type === 'agent' && message.name ? { agentName: message.name } : {}),
      ...(cc.length > 0 ? { cc } : {}),
      to: {
        address: to.address,
        ...(customer?.name && customer.address === to.address ? { name: customer.name } : {}),
      },
      replyToken,
      messageId,
      parent: meta
        ? {
            ...(meta.messageId ? { messageId: meta.messageId } : {}),
            ...(meta.inReplyTo ? { inReplyTo: meta.inReplyTo } : {}),
            references:
              meta.references && meta.references.length > 0
                ? meta.references
                : await this.#threadChain(conversation, parent!, meta),
            subject: meta.subject ?? '',
          }
        : null,
      subject: meta?.subject ?? convMeta.subject ?? '',
      text: message.text,
      attachments: message.attachments,
      bounceAddress: bounceAddress(message.id, this.#deps.bounceSecret, from.domain),
    });
    await sendWithRetry(this.#deps.transport, mail, this.#deps.retryDelaysMs);
    return { externalId: messageId, status: 'sent' };
  }
}
