/**
 * @module The WhatsApp Cloud API channel (`whatsapp_cloud`): WhatsApp through Meta's Graph API
 * directly, without Twilio.
 *
 *   1. `GET /webhooks/whatsapp-cloud` answers Meta's subscription handshake with the challenge when
 *      `hub.verify_token` is `WHATSAPP_VERIFY_TOKEN` (403 otherwise);
 *   2. `POST /webhooks/whatsapp-cloud` reads the raw body (size-limited), checks
 *      `X-Hub-Signature-256` with `WHATSAPP_APP_SECRET` over those exact bytes, downloads any media
 *      through the Graph API, accepts every message (dedupe on the `wamid`) and records every status,
 *      and only then answers 200: Meta retries anything else (CHANNELS.md §4), so a store that refused
 *      gets 503 with Retry-After;
 *   3. the bot's replies leave through `POST /{version}/{phone-number-id}/messages`.
 *
 * Every refused request is logged once at warn with its reason, counted, and nothing is stored: 401
 * for a signature that does not verify (missing included), 413 for a body over the limit, 415 for a
 * body that is not JSON, 400 for JSON that is not a Cloud API notification.
 */
import express, { type Request, type RequestHandler, type Response } from 'express';
import {
  type Attachment,
  type ChannelAdapter,
  type ChannelContext,
  defineAdapter,
  extend,
  type InboundMessage,
  isGatewayError,
  untrusted,
} from '../../src/core/index.js';
import { pacer, pacingFor } from '../../src/pacing/index.js';
import { AttachmentStore, attachmentRoute } from '../email/attachments.js';
import { configure, SETTINGS, type WhatsAppCloudConfig } from './config.js';
import { GraphClient, MediaTooLargeError, type RetryPolicy } from './graph.js';
import { CHANNEL, type MappedMessage, parseNotification, type StatusUpdate } from './inbound.js';
import { sendMessage } from './outbound.js';
import { TypingIndicators } from './typing.js';
import { checkChallenge, verifySignature } from './verify.js';

/** The webhook path (GET handshake and POST notifications); what users paste into the app console. */
export const WEBHOOK_PATH = '/webhooks/whatsapp-cloud';

/**
 * Largest webhook body read. A notification is a few kilobytes (a 4,096-character text plus
 * metadata); Meta batches at most a few messages per POST, so anything far larger is not from Meta.
 */
const MAX_BODY_BYTES = 256 * 1024;

/** Options for tests: a different retry policy for the Graph API. */
export interface WhatsAppCloudAdapterOptions {
  policy?: RetryPolicy;
}

/** Builds the adapter; exported apart from the module so tests can shorten the retry policy. */
export function createWhatsAppCloudAdapter(
  ctx: ChannelContext,
  config: WhatsAppCloudConfig,
  opts: WhatsAppCloudAdapterOptions = {},
): ChannelAdapter {
  const { logger } = ctx;
  // Per business phone number over all processes: Meta's throughput (WHATSAPP_SEND_RATE_PER_SEC).
  const { gate } = pacingFor(ctx.store, logger);
  const pace = pacer(gate, 'wa', config.sendRatePerSec);
  const graph = new GraphClient({
    apiUrl: config.apiUrl,
    apiVersion: config.apiVersion,
    accessToken: config.accessToken,
    logger,
    // Meta's 130429 holds the number's other sends too (the same key as the pacing's).
    onThrottled: (id, untilMs) => void gate.defer(`wa:${id}`, untilMs).catch(() => undefined),
    ...(opts.policy ? { policy: opts.policy } : {}),
  });
  // Same records and route as mail attachments: one `GET /v1/attachments/:id` serves both.
  const attachments = new AttachmentStore(ctx.store.kv, ctx.publicUrl);
  const typing = config.typingIndicator
    ? new TypingIndicators({
        kv: ctx.store.kv,
        send: (phoneNumberId, payload) => graph.sendStatus(phoneNumberId, payload),
        logger,
      })
    : undefined;
  const limit = Math.min(ctx.config.BODY_LIMIT_BYTES, MAX_BODY_BYTES);
  const readRaw = express.raw({ type: () => true, limit, inflate: false });
  ctx.verificationMode(CHANNEL, config.verify, 'WHATSAPP_VERIFY');

  /** Answers a refused request, logs it once at warn with its reason and counts it. */
  function reject(req: Request, res: Response, status: number, reason: string, detail: string): void {
    logger.warn({ path: req.path, status, reason, detail }, 'WhatsApp Cloud webhook refused');
    ctx.rejected(CHANNEL, reason);
    res.status(status).type('text/plain').send(detail);
  }

  const onChallenge: RequestHandler = (req, res) => {
    const q = (name: string) => {
      const v = req.query[name];
      return typeof v === 'string' ? v : undefined;
    };
    const result = checkChallenge(config.verifyToken, {
      mode: q('hub.mode'),
      token: q('hub.verify_token'),
      challenge: q('hub.challenge'),
    });
    if (!result.ok) {
      reject(req, res, 403, result.reason, 'The verification request does not match WHATSAPP_VERIFY_TOKEN');
      return;
    }
    logger.info('WhatsApp Cloud webhook subscription verified');
    res.status(200).type('text/plain').send(result.challenge);
  };

  const onNotification: RequestHandler = async (req, res) => {
    if (!req.is('application/json')) {
      reject(req, res, 415, 'unsupported_content_type', 'Cloud API webhooks are application/json');
      return;
    }
    let raw: Buffer;
    try {
      await new Promise<void>((resolve, fail) =>
        readRaw(req, res, (err?: unknown) => (err ? fail(err) : resolve())),
      );
      raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    } catch (err) {
      const type = (err as { type?: string }).type;
      if (type === 'entity.too.large')
        return reject(req, res, 413, 'body_too_large', `The body exceeds ${limit} bytes`);
      if (type === 'encoding.unsupported')
        return reject(req, res, 415, 'unsupported_encoding', 'Send the body uncompressed');
      return reject(req, res, 400, 'unreadable_body', 'The request body could not be read');
    }
    const verified = verifySignature(config.appSecret, req.get('x-hub-signature-256'), raw);
    let trusted = true;
    if (!verified.ok) {
      ctx.verificationFailed(CHANNEL, verified.reason, config.verify, { path: req.path });
      if (config.verify === 'enforce') {
        return reject(req, res, 401, verified.reason, 'The X-Hub-Signature-256 does not verify');
      }
      // Report mode (SPEC §12): accepted, but nothing it says about the sender is trusted.
      trusted = false;
    }
    let body: unknown;
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch {
      return reject(req, res, 400, 'malformed_json', 'The body is not valid JSON');
    }
    const parsed = parseNotification(body);
    if (!parsed.ok) return reject(req, res, 400, 'malformed_payload', `Bad request: ${parsed.reason}`);
    const { messages, statuses, errors, ignored } = parsed.value;
    for (const error of errors) logger.warn({ ...error }, 'WhatsApp Cloud API reported an error');
    if (ignored > 0) logger.debug({ ignored }, 'WhatsApp Cloud webhook changes of other fields ignored');

    let current: Record<string, unknown> = {};
    try {
      for (const mapped of messages) {
        current = { wamid: mapped.inbound.dedupeKey };
        const inbound = await withMedia(mapped);
        // Kept before the accept, so the engine finds it whichever process answers the message.
        if (typing && !inbound.skipBot) await typing.remember(inbound.channelRef, inbound.dedupeKey);
        const result = await ctx.ingest.accept(
          trusted ? inbound : extend(inbound, { identity: untrusted(inbound.identity) }),
        );
        logger.debug(
          { conversationId: result.message.conversationId, duplicate: result.duplicate, ...current },
          'WhatsApp Cloud message accepted',
        );
      }
      for (const update of statuses) {
        current = { wamid: update.wamid, metaStatus: update.metaStatus };
        await report(update, current);
      }
    } catch (err) {
      unavailable(res, current, err);
      return;
    }
    res.status(200).type('text/plain').send('OK');
  };

  /**
   * Downloads the message's media (GET /{media-id}, then the URL with the token) and stores it as an
   * attachment. A download that fails or is too large leaves the message without it, saying so in the
   * text and meta: the message itself is never lost for its media, and Meta's retry would not help a
   * file that is too large or gone.
   */
  async function withMedia(mapped: MappedMessage): Promise<InboundMessage> {
    const { inbound, media } = mapped;
    if (!media) return inbound;
    const wamid = inbound.dedupeKey;
    let file: { content: Buffer; contentType: string };
    try {
      const info = await graph.mediaInfo(media.id);
      if (info.fileSize !== undefined && info.fileSize > config.mediaMaxBytes) {
        throw new MediaTooLargeError(info.fileSize, config.mediaMaxBytes);
      }
      const downloaded = await graph.download(info.url, config.mediaMaxBytes);
      const contentType = media.mimeType ?? info.mimeType ?? downloaded.contentType ?? '';
      file = {
        content: downloaded.content,
        contentType: contentType.split(';')[0]?.trim() || 'application/octet-stream',
      };
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      logger.warn({ wamid, mediaId: media.id, reason }, 'WhatsApp Cloud media could not be downloaded');
      const whatsapp = { ...(inbound.message.meta?.whatsapp as Record<string, unknown>) };
      whatsapp.mediaError = reason;
      const text = inbound.message.text || `[${media.type} could not be downloaded]`;
      const meta = extend(inbound.message.meta ?? {}, { whatsapp });
      return extend(inbound, { message: extend(inbound.message, { text, meta }) });
    }
    // Outside the try: a store that refuses is a 503 (Meta retries), not a missing attachment.
    const stored: Attachment = await attachments.put(`${CHANNEL}\n${wamid}`, 0, {
      name: media.filename ?? `${media.type}${extensionOf(file.contentType)}`,
      contentType: file.contentType,
      content: file.content,
    });
    return extend(inbound, { message: extend(inbound.message, { attachments: [stored] }) });
  }

  async function report(update: StatusUpdate, fields: Record<string, unknown>): Promise<void> {
    if (!update.status) return;
    const result = await ctx.delivery.report(CHANNEL, update.wamid, update.status, update.error);
    if (result.found) {
      logger.debug(
        { ...fields, status: update.status, changed: result.changed },
        'WhatsApp Cloud status recorded',
      );
    } else {
      logger.info(
        { ...fields, status: update.status },
        'WhatsApp Cloud status for a message this gateway does not know; ignored',
      );
    }
  }

  /** 503 (with Retry-After) when the store or queue refused, so Meta delivers the notification again. */
  function unavailable(res: Response, fields: Record<string, unknown>, err: unknown): void {
    const status = isGatewayError(err) ? Math.max(err.status, 500) : 500;
    const retryAfter = isGatewayError(err) ? err.extra.retryAfter : undefined;
    if (status === 503)
      logger.warn(
        { ...fields, code: (err as { code?: string }).code, status },
        'WhatsApp Cloud webhook not accepted',
      );
    else logger.error({ ...fields, err, status }, 'WhatsApp Cloud webhook could not be stored');
    res.set('retry-after', String(typeof retryAfter === 'number' ? retryAfter : 5));
    res.status(status).type('text/plain').send('Try again later');
  }

  return {
    name: 'whatsapp-cloud',
    channels: [CHANNEL],
    routes(router) {
      router.get(WEBHOOK_PATH, onChallenge);
      router.post(WEBHOOK_PATH, onNotification);
      router.get('/v1/attachments/:id', ctx.requireApiKey, attachmentRoute(attachments));
    },
    signal(conversation, signal) {
      return signal.type === 'typing'
        ? typing?.set(conversation, signal.on, signal.about?.externalId)
        : undefined;
    },
    send: (conversation, message) =>
      sendMessage(
        {
          send: (phoneNumberId, payload) => graph.sendMessage(phoneNumberId, payload),
          phoneNumberId: config.phoneNumberId,
          remember: (wamid) => ctx.delivery.remember(CHANNEL, wamid, conversation.id, message.id),
          logger,
          ...(pace ? { pace } : {}),
        },
        conversation,
        message,
      ),
    describe: () => [
      `whatsapp-cloud: set the callback URL ${ctx.publicUrl}${WEBHOOK_PATH} with WHATSAPP_VERIFY_TOKEN as the verify token, and subscribe to the "messages" field`,
      `whatsapp-cloud: replies go out through ${config.apiUrl}/${config.apiVersion} from phone number id ${config.phoneNumberId} unless the customer wrote to another`,
    ],
  };
}

/** A file extension for a stored attachment's name, from the common WhatsApp media types. */
function extensionOf(contentType: string): string {
  const type = contentType.split(';')[0]?.trim().toLowerCase() ?? '';
  const known: Record<string, string> = {
    'image/jpeg': '.jpg',
    'image/png': '.png',
    'image/webp': '.webp',
    'audio/ogg': '.ogg',
    'audio/mpeg': '.mp3',
    'audio/aac': '.aac',
    'audio/mp4': '.m4a',
    'video/mp4': '.mp4',
    'video/3gpp': '.3gp',
    'application/pdf': '.pdf',
  };
  return known[type] ?? '';
}

export default defineAdapter<WhatsAppCloudConfig>({
  name: 'whatsapp-cloud',
  settings: SETTINGS,
  configure,
  create: (ctx, config) => createWhatsAppCloudAdapter(ctx, config),
});
