/**
 * @module `POST /webhooks/email/mailgun`: Mailgun inbound routes (`forward()`), CHANNELS.md §3.1.
 *
 * Mailgun posts `application/x-www-form-urlencoded`, or `multipart/form-data` when the mail has
 * attachments; a route URL ending in `mime` posts the raw message in `body-mime`, which goes through
 * the same MIME parser as the SMTP listener. The signature fields are form fields, so the body is read
 * (bounded) and parsed before they can be checked; nothing is stored before the check passes.
 *
 * Answers (Mailgun retries every code but 200 and 406 for 8 hours):
 * - 200 once the mail is stored and queued (also for a mail already received);
 * - 403 for a missing or wrong signature, a stale timestamp or a replayed token (SPEC §5). Retrying is
 *   harmless for a forgery and lets genuine mail through once a rotated signing key is configured;
 * - 406 for a post that can never succeed: not a form, over `EMAIL_MAX_BYTES`, no valid `From`;
 * - 503 when the store cannot accept it now (Mailgun retries).
 *
 * Sender authentication uses Mailgun's own results (`X-Mailgun-Spf`, `X-Mailgun-Dkim-Check-Result` in
 * the header block Mailgun prepended, auth.ts); `EMAIL_TRUSTED_AUTHSERV_ID` is for the SMTP listener
 * only. Mail that fails is stored flagged and not answered, still with 200 (a retry would fail the
 * same way).
 */
import { createHash } from 'node:crypto';
import type { Request, RequestHandler } from 'express';
import { simpleParser } from 'mailparser';
import type { ChannelContext } from '../../src/core/index.js';
import { tracedCheck, tracingOn } from '../../src/tracing/index.js';
import { verdictFromMailgun } from './auth.js';
import type { EmailConfig } from './config.js';
import {
  fromParsedMail,
  type MailAttachmentInput,
  type MailInput,
  MailRejected,
  messageAddress,
  messageIds,
} from './inbound.js';
import type { MailReceiver } from './receive.js';
import { MAILGUN_WINDOW_S, verifyMailgunSignature } from './verify.js';

/** Tokens are remembered past the window on both sides, so a replay inside it is always seen. */
const TOKEN_TTL_S = 3 * MAILGUN_WINDOW_S;

type Fields = Map<string, string>;

/** Reads the body up to `limit` bytes; null when it is larger. */
async function readBody(req: Request, limit: number): Promise<Buffer | null> {
  const declared = Number(req.get('content-length') ?? '0');
  if (declared > limit) return null;
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) return null;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

/** Parses the form; string fields and files (multipart only). Node's fetch `Request` parses multipart. */
async function parseForm(
  contentType: string,
  body: Buffer,
): Promise<{ fields: Fields; files: Map<string, File> }> {
  const fields: Fields = new Map();
  const files = new Map<string, File>();
  if (contentType.startsWith('application/x-www-form-urlencoded')) {
    for (const [k, v] of new URLSearchParams(body.toString('utf8'))) if (!fields.has(k)) fields.set(k, v);
    return { fields, files };
  }
  const form = await new Request('http://mailgun.invalid/', {
    method: 'POST',
    headers: { 'content-type': contentType },
    body,
  }).formData();
  for (const [k, v] of form) {
    if (typeof v === 'string') {
      if (!fields.has(k)) fields.set(k, v);
    } else if (!files.has(k)) files.set(k, v);
  }
  return { fields, files };
}

/** Readable text from an HTML body, with the same converter mailparser uses for HTML-only mail. */
async function htmlToText(html: string): Promise<string> {
  const mime = `Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n${Buffer.from(html, 'utf8').toString('base64')}`;
  return (await simpleParser(mime)).text ?? '';
}

/** Builds a {@link MailInput} from the parsed-mail fields of a route post. */
export async function fromMailgunFields(fields: Fields, files: Map<string, File>): Promise<MailInput> {
  let headers: Array<readonly [string, string]> = [];
  try {
    const list = JSON.parse(fields.get('message-headers') ?? '[]') as unknown;
    if (Array.isArray(list)) {
      headers = list
        .filter(
          (h): h is [string, string] =>
            Array.isArray(h) && typeof h[0] === 'string' && typeof h[1] === 'string',
        )
        .map(([k, v]) => [k.toLowerCase(), v] as const);
    }
  } catch {
    // A malformed header list leaves only the top-level fields.
  }
  const get = (name: string) => headers.find(([k]) => k === name)?.[1];
  const fromField = fields.get('from') ?? get('from') ?? '';
  const named = /^\s*"?([^"<]*?)"?\s*<[^<>]+>\s*$/.exec(fromField);
  const fromAddress = messageAddress(fromField)[0];
  const attachments: MailAttachmentInput[] = [];
  const count = Math.min(Number(fields.get('attachment-count') ?? files.size) || 0, 100);
  for (let i = 1; i <= count; i++) {
    const file = files.get(`attachment-${i}`);
    if (!file) continue;
    attachments.push({
      filename: file.name,
      contentType: file.type,
      content: Buffer.from(await file.arrayBuffer()),
    });
  }
  const html = fields.get('body-html') ?? '';
  let text = fields.get('body-plain') ?? '';
  if (!text.trim() && html) text = await htmlToText(html);
  return {
    headers,
    messageId: messageIds(get('message-id'))[0],
    inReplyTo: messageIds(get('in-reply-to'))[0],
    references: messageIds(get('references')),
    ...(fromAddress ? { from: { address: fromAddress, ...(named?.[1] ? { name: named[1] } : {}) } } : {}),
    recipients: [...messageAddress(get('to') ?? ''), ...messageAddress(get('cc') ?? '')],
    subject: fields.get('subject') ?? get('subject') ?? '',
    ...(get('date') && !Number.isNaN(Date.parse(get('date')!))
      ? { date: new Date(get('date')!).toISOString() }
      : {}),
    text,
    attachments,
    envelope: envelopeOf(fields),
  };
}

/** The SMTP envelope Mailgun saw: `sender` (MAIL FROM; empty for the null sender) and `recipient`. */
function envelopeOf(fields: Fields): MailInput['envelope'] {
  const sender = fields.get('sender');
  return {
    mailFrom: sender === undefined ? undefined : sender === '' || sender === '<>' ? null : sender,
    rcptTo: messageAddress(fields.get('recipient') ?? ''),
  };
}

export interface MailgunRouteDeps {
  ctx: ChannelContext;
  config: EmailConfig;
  signingKey: string;
  receiver: MailReceiver;
  /** Injectable clock (seconds), for tests. */
  nowS?: () => number;
}

export function mailgunRoute(deps: MailgunRouteDeps): RequestHandler {
  const { ctx, config, signingKey, receiver } = deps;
  const log = ctx.logger;
  const refuse = (res: Parameters<RequestHandler>[1], status: number, reason: string) => {
    log.warn({ reason, status }, `email: Mailgun post refused (${reason})`);
    ctx.rejected('email', reason);
    res
      .status(status)
      .type('text/plain')
      .send(status === 406 ? 'Not Acceptable' : 'Forbidden');
  };
  return async function mailgunWebhook(req, res) {
    const contentType = (req.get('content-type') ?? '').toLowerCase();
    if (!/^(application\/x-www-form-urlencoded|multipart\/form-data)/.test(contentType)) {
      req.resume();
      return refuse(res, 406, 'unsupported_media_type');
    }
    const body = await readBody(req, config.maxBytes).catch(() => null);
    if (!body) {
      res.setHeader('Connection', 'close');
      req.resume();
      return refuse(res, 406, 'too_large');
    }
    let form: Awaited<ReturnType<typeof parseForm>>;
    try {
      form = await parseForm(contentType, body);
    } catch {
      return refuse(res, 406, 'malformed_body');
    }
    const signed = {
      timestamp: form.fields.get('timestamp'),
      token: form.fields.get('token'),
      signature: form.fields.get('signature'),
    };
    const nowS = deps.nowS?.();
    // SPEC §12: a `verify` span in the webhook's trace while tracing is on.
    const check = tracingOn()
      ? tracedCheck(config.mailgunVerify, () => verifyMailgunSignature(signed, signingKey, nowS))
      : verifyMailgunSignature(signed, signingKey, nowS);
    let trusted = check.ok;
    if (!check.ok) {
      ctx.verificationFailed('email', check.reason, config.mailgunVerify, { path: req.path });
      if (config.mailgunVerify === 'enforce') return refuse(res, 403, check.reason);
    }
    // The token's replay check only means something for a post whose signature covers the token.
    const tokenKey = check.ok
      ? `email:mgtok:${createHash('sha256').update(check.token).digest('hex')}`
      : null;
    if (tokenKey) {
      let fresh: boolean;
      try {
        fresh = await ctx.store.kv.setIfAbsent(tokenKey, '1', TOKEN_TTL_S);
      } catch (err) {
        log.error(
          { err: { message: (err as Error).message } },
          'email: store unreachable; Mailgun post answered 503',
        );
        res.setHeader('Retry-After', '5');
        return void res.status(503).type('text/plain').send('Service Unavailable');
      }
      if (!fresh) {
        ctx.verificationFailed('email', 'replayed_token', config.mailgunVerify, { path: req.path });
        if (config.mailgunVerify === 'enforce') return refuse(res, 403, 'replayed_token');
        trusted = false;
      }
    }

    try {
      const mime = form.fields.get('body-mime');
      const input = mime
        ? fromParsedMail(
            await simpleParser(mime).catch((err: Error) => {
              throw new MailRejected('malformed_mime', `The message could not be parsed: ${err.message}`);
            }),
            envelopeOf(form.fields),
          )
        : await fromMailgunFields(form.fields, form.files);
      // Mailgun checked the sender when it received the mail; its results ride in the headers it adds.
      const fromField = mime ? undefined : form.fields.get('from');
      const auth = verdictFromMailgun(input.headers, input.envelope.mailFrom, fromField);
      const outcome = await receiver.receive(input, auth, trusted);
      res.status(200).json({ status: outcome.duplicate ? 'duplicate' : 'accepted', id: outcome.messageId });
    } catch (err) {
      if (err instanceof MailRejected) return refuse(res, 406, err.reason);
      // Not accepted: forget the token so Mailgun's retry of this very post is not taken for a replay.
      if (tokenKey) await ctx.store.kv.delete(tokenKey).catch(() => undefined);
      log.error(
        { err: { message: (err as Error).message, code: (err as { code?: string }).code } },
        'email: could not accept a Mailgun post; answered 503 so Mailgun retries',
      );
      res.setHeader('Retry-After', '5');
      res.status(503).type('text/plain').send('Service Unavailable');
    }
  };
}
