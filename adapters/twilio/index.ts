/**
 * @module The Twilio channel (SPEC §2, §5): SMS and WhatsApp through Programmable Messaging.
 *
 *   1. `POST /webhooks/twilio` reads the raw body (size-limited), checks `X-Twilio-Signature` against
 *      `PUBLIC_URL` + path and query, maps the message, and answers empty TwiML once it is accepted;
 *   2. the bot's replies leave through the REST API from the number the customer wrote to;
 *   3. `POST /webhooks/twilio/status` takes Twilio's status callbacks for those replies.
 *
 * Every refused request is answered with Twilio's convention (403 for a signature that does not verify,
 * including a missing header: SPEC §5 answers every unauthenticated webhook alike, where twilio-node's
 * `webhook()` would say 400; 400 for a SID of the wrong shape and 403 for another account's
 * `AccountSid`, see ids.ts), logged once at warn with its reason, counted, and nothing is stored.
 */
import express, { type Request, type RequestHandler, type Response } from 'express';
import {
  type ChannelAdapter,
  type ChannelContext,
  defineAdapter,
  extend,
  isGatewayError,
  untrusted,
} from '../../src/core/index.js';
import { pacer, pacingFor } from '../../src/pacing/index.js';
import { tracedCheck, tracingOn } from '../../src/tracing/index.js';
import { configure, SETTINGS, type TwilioConfig } from './config.js';
import { checkIds } from './ids.js';
import { type StatusUpdate, toInbound, toStatusUpdate } from './inbound.js';
import { createMessagesClient, type MessagesClient, sendMessage } from './outbound.js';
import { createTypingClient, showTyping, type TypingClient } from './typing.js';
import { type Params, parseForm, parseJson, verifyTwilioRequest } from './verify.js';

/** The empty answer to a message webhook (twilio-node `MessagingResponse().toString()`): no TwiML reply. */
export const EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>';

const TWIML_LENGTH = Buffer.byteLength(EMPTY_TWIML);

/** Webhook paths (SPEC §5); they are what users paste into the Twilio console. */
export const MESSAGE_PATH = '/webhooks/twilio';
export const STATUS_PATH = '/webhooks/twilio/status';

/**
 * Largest webhook body read. Twilio's message webhooks are a few kilobytes (a 1,600-character body plus
 * about 20 fields); anything far larger is not from Twilio.
 */
const MAX_BODY_BYTES = 64 * 1024;

/** Options for tests: different REST clients. */
export interface TwilioAdapterOptions {
  messages?: MessagesClient;
  typing?: TypingClient;
}

/** Builds the adapter; exported apart from the module so tests can inject a client. */
export function createTwilioAdapter(
  ctx: ChannelContext,
  config: TwilioConfig,
  opts: TwilioAdapterOptions = {},
): ChannelAdapter {
  const { logger } = ctx;
  const messages =
    opts.messages ?? createMessagesClient(config.accountSid, config.authToken, config.apiUrl, logger);
  const typing = config.typingIndicator
    ? (opts.typing ?? createTypingClient(config.accountSid, config.authToken, config.apiUrl, logger))
    : undefined;
  // Per sender over all processes, when TWILIO_SEND_RATE_PER_SEC is set (docs/pacing.md).
  const pace = pacer(pacingFor(ctx.store, logger).gate, 'twilio', config.sendRatePerSec);
  const limit = Math.min(ctx.config.BODY_LIMIT_BYTES, MAX_BODY_BYTES);
  const readRaw = express.raw({ type: () => true, limit, inflate: false });
  ctx.verificationMode('twilio', config.verify, 'TWILIO_VERIFY');

  /** Answers a refused webhook, logs it once at warn with its reason and counts it; returns undefined. */
  function reject(
    req: Request,
    res: Response,
    status: number,
    reason: string,
    detail: string,
    extra: Record<string, unknown> = {},
  ): undefined {
    logger.warn({ path: req.path, status, reason, detail, ...extra }, 'Twilio webhook refused');
    ctx.rejected('twilio', reason);
    res.status(status).type('text/plain').send(detail);
    return undefined;
  }

  /** Reads, checks and verifies a webhook; answers the refusal itself and returns undefined when refused. */
  async function accepted(
    req: Request,
    res: Response,
  ): Promise<{ params: Params; trusted: boolean } | undefined> {
    const refuse = (status: number, reason: string, detail: string, extra?: Record<string, unknown>) =>
      reject(req, res, status, reason, detail, extra);
    const kind = req.is('application/x-www-form-urlencoded')
      ? 'form'
      : req.is('application/json')
        ? 'json'
        : null;
    if (!kind) {
      return refuse(415, 'unsupported_content_type', 'Twilio webhooks are application/x-www-form-urlencoded');
    }
    let body: string;
    try {
      await new Promise<void>((resolve, reject) =>
        readRaw(req, res, (err?: unknown) => (err ? reject(err) : resolve())),
      );
      body = Buffer.isBuffer(req.body) ? req.body.toString('utf8') : '';
    } catch (err) {
      const type = (err as { type?: string }).type;
      if (type === 'entity.too.large')
        return refuse(413, 'body_too_large', `The body exceeds ${limit} bytes`);
      if (type === 'encoding.unsupported')
        return refuse(415, 'unsupported_encoding', 'Send the body uncompressed');
      return refuse(400, 'unreadable_body', 'The request body could not be read');
    }
    const url = `${ctx.publicUrl}${req.originalUrl}`;
    const input: Parameters<typeof verifyTwilioRequest>[0] = {
      authToken: config.authToken,
      signature: req.get('x-twilio-signature'),
      url,
      receivedUrls: () => receivedUrls(req),
      body,
      kind,
    };
    // SPEC §12: a `verify` span in the webhook's trace while tracing is on.
    const verified = tracingOn()
      ? tracedCheck(config.verify, () => verifyTwilioRequest(input))
      : verifyTwilioRequest(input);
    let params: Params;
    let trusted = true;
    if (verified.ok) {
      params = verified.params;
    } else {
      ctx.verificationFailed('twilio', verified.reason, config.verify, { path: req.path, url });
      if (config.verify === 'enforce') {
        const detail =
          verified.reason === 'url_mismatch'
            ? 'The signature is for the URL this request was sent to, not for PUBLIC_URL + path: set PUBLIC_URL to the URL configured in Twilio'
            : 'The X-Twilio-Signature does not verify';
        return refuse(403, verified.reason, detail, { url });
      }
      // Report mode (SPEC §12): accepted, but nothing it says about the sender is trusted.
      params = kind === 'form' ? parseForm(body) : parseJson(body);
      trusted = false;
    }
    // Signed is not enough: a re-split of signed bytes also verifies (see ids.ts).
    const ids = checkIds(params, config.accountSid);
    if (ids) return refuse(ids.status, ids.reason, ids.detail);
    return { params, trusted };
  }

  /** 503 (with Retry-After) when the store or queue refused, so Twilio's retry policy may try again. */
  function unavailable(res: Response, fields: Record<string, unknown>, err: unknown): void {
    const status = isGatewayError(err) ? Math.max(err.status, 500) : 500;
    const retryAfter = isGatewayError(err) ? err.extra.retryAfter : undefined;
    // Back-pressure (queue full, shutting down) is expected under load; anything else is a fault.
    if (status === 503)
      logger.warn(
        { ...fields, code: (err as { code?: string }).code, status },
        'Twilio webhook not accepted',
      );
    else logger.error({ ...fields, err, status }, 'Twilio webhook could not be stored');
    if (typeof retryAfter === 'number') res.set('retry-after', String(retryAfter));
    res.status(status).type('text/plain').send('Try again later');
  }

  const onMessage: RequestHandler = async (req, res) => {
    const checked = await accepted(req, res);
    if (!checked) return;
    const mapped = toInbound(checked.params);
    if (!mapped.ok) {
      reject(req, res, 400, 'missing_fields', `Bad request: ${mapped.reason}`);
      return;
    }
    const inbound = checked.trusted
      ? mapped.value
      : extend(mapped.value, { identity: untrusted(mapped.value.identity) });
    const fields = { messageSid: inbound.dedupeKey };
    try {
      const result = await ctx.ingest.accept(inbound);
      logger.debug(
        { conversationId: result.message.conversationId, duplicate: result.duplicate, ...fields },
        'Twilio message accepted',
      );
    } catch (err) {
      unavailable(res, fields, err);
      return;
    }
    // What `res.type('text/xml').send(EMPTY_TWIML)` sends, without Express's per-call header work.
    res.statusCode = 200;
    res.setHeader('Content-Type', 'text/xml; charset=utf-8');
    res.setHeader('Content-Length', TWIML_LENGTH);
    res.end(EMPTY_TWIML);
  };

  const onStatus: RequestHandler = async (req, res) => {
    const checked = await accepted(req, res);
    if (!checked) return;
    const mapped = toStatusUpdate(checked.params);
    if (!mapped.ok) {
      reject(req, res, 400, 'missing_fields', `Bad request: ${mapped.reason}`);
      return;
    }
    const update = mapped.value;
    const fields = { messageSid: update.messageSid, twilioStatus: update.twilioStatus };
    try {
      await report(update, fields);
    } catch (err) {
      unavailable(res, fields, err);
      return;
    }
    // Answered 204 even for an unknown SID (report() logs it): an error would only fill Twilio's debugger.
    res.status(204).end();
  };

  async function report(update: StatusUpdate, fields: Record<string, unknown>): Promise<void> {
    if (!update.status) return;
    // The channel comes from From/To; a callback without them reads as sms, so whatsapp is tried next.
    const channels = update.channel === 'sms' ? (['sms', 'whatsapp'] as const) : (['whatsapp'] as const);
    for (const channel of channels) {
      const result = await ctx.delivery.report(channel, update.messageSid, update.status, update.error);
      if (result.found) {
        logger.debug({ status: update.status, changed: result.changed, ...fields }, 'Twilio status recorded');
        return;
      }
    }
    logger.info(
      { ...fields, status: update.status },
      'Twilio status callback for a message this gateway does not know; ignored',
    );
  }

  return {
    name: 'twilio',
    channels: ['sms', 'whatsapp'],
    routes(router) {
      router.post(MESSAGE_PATH, onMessage);
      router.post(STATUS_PATH, onStatus);
    },
    signal: (conversation, signal) =>
      typing && signal.type === 'typing' ? showTyping(typing, logger, conversation, signal) : undefined,
    send: (conversation, message) =>
      sendMessage(
        {
          messages,
          statusCallback: `${ctx.publicUrl}${STATUS_PATH}`,
          remember: (sid) => ctx.delivery.remember(conversation.channel, sid, conversation.id, message.id),
          logger,
          ...(pace ? { pace } : {}),
        },
        conversation,
        message,
      ),
    describe: () => [
      `twilio: set "A message comes in" to HTTP POST ${ctx.publicUrl}${MESSAGE_PATH} on each number, Messaging Service or WhatsApp sender`,
      `twilio: status callbacks come to ${ctx.publicUrl}${STATUS_PATH} (set on every message sent)`,
    ],
  };
}

/**
 * The URLs a request may have been signed for if `PUBLIC_URL` is wrong: its Host (or a proxy's
 * X-Forwarded-Host) with either scheme. Only used to explain a failure, never to accept one.
 */
function receivedUrls(req: Request): string[] {
  const hosts = [req.get('x-forwarded-host')?.split(',')[0]?.trim(), req.get('host')].filter(
    (h): h is string => !!h,
  );
  return hosts.flatMap((host) => [`https://${host}${req.originalUrl}`, `http://${host}${req.originalUrl}`]);
}

export default defineAdapter<TwilioConfig>({
  name: 'twilio',
  settings: SETTINGS,
  configure,
  create: (ctx, config) => createTwilioAdapter(ctx, config),
});
