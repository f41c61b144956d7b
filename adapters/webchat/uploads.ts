/**
 * @module Files in web chat, both ways, kept like mail attachments (the same {@link AttachmentStore}
 * records, served at `GET /v1/attachments/:id` with an API key for bots and API clients):
 *
 *   - `POST /webchat/uploads`: the visitor's file as the raw body, `Authorization: Bearer <visitor token>`
 *     (the same token as the socket's; never in the URL), the file name percent-encoded in `X-File-Name`.
 *     The type is read from the file's first bytes, never taken from the browser: 401 without a valid
 *     token, 413 over `WEBCHAT_UPLOAD_MAX_BYTES`, 415 for a type not in `WEBCHAT_UPLOAD_TYPES`, each as
 *     problem+json, logged once and counted. The answer names the stored file; the widget then sends a
 *     `message` frame that references it by id.
 *   - `GET /webchat/attachments/:id`: the same bytes for the visitor's browser, with the visitor token,
 *     only for files of the visitor's own conversation (uploaded there, or sent there by the bot or an
 *     agent); served like the API route (`attachment` disposition, `nosniff`, `no-store`).
 *
 * Pages on other origins call both with CORS, for the origins allowed to open the socket.
 */
import { randomUUID } from 'node:crypto';
import express, { type Request, type RequestHandler, type Router } from 'express';
import { type Attachment, GatewayError, type KeyValue, type Store } from '../../src/core/index.js';
import { ATTACHMENT_TTL_S, type AttachmentStore, attachmentRoute } from '../email/attachments.js';
import { TokenBucket } from './limits.js';
import { sniffType, type UploadType } from './sniff.js';
import type { TokenCheck } from './verify.js';

export const UPLOAD_PATH = '/webchat/uploads';
export const DOWNLOAD_PATH = '/webchat/attachments/:id';
/** Files one message may carry. */
export const MAX_ATTACHMENTS_PER_MESSAGE = 5;
/**
 * Uploads per visitor and minute in one process, in bursts of up to that many: a person sends a few
 * files, a script filling the store with valid tokens sends dozens.
 */
export const UPLOADS_PER_MINUTE = 10;
/** Visitors whose upload rate is remembered; the oldest is forgotten beyond this. */
const MAX_TRACKED_VISITORS = 10_000;

const ID_RE = /^att_[0-9a-f]{32}$/;
/** An attachment URL of this gateway: `<PUBLIC_URL>/v1/attachments/att_…`. */
const OWN_URL_RE = /\/v1\/attachments\/(att_[0-9a-f]{32})$/;
const MAX_NAME_CHARS = 200;

/** Which conversation may read a stored file through the widget's route. */
const ownerKey = (id: string) => `webchat:att:${id}`;

export interface UploadOptions {
  store: Store;
  attachments: AttachmentStore;
  maxBytes: number;
  types: readonly UploadType[];
  verify(token: string): TokenCheck;
  originAllowed(origin: string | undefined, host: string | undefined): boolean;
  rejected(reason: string): void;
}

/** The files of web-chat conversations: who may read which, and the ids a message frame references. */
export class WebChatFiles {
  readonly #kv: KeyValue;
  readonly #attachments: AttachmentStore;

  constructor(kv: KeyValue, attachments: AttachmentStore) {
    this.#kv = kv;
    this.#attachments = attachments;
  }

  /** Lets the conversation's visitor read the file (as long as the file itself is kept). */
  async grant(conversationId: string, id: string): Promise<void> {
    await this.#kv.set(ownerKey(id), conversationId, ATTACHMENT_TTL_S);
  }

  async mayRead(conversationId: string, id: string): Promise<boolean> {
    return ID_RE.test(id) && (await this.#kv.get(ownerKey(id))) === conversationId;
  }

  /**
   * The attachments of a visitor's message, from the ids of files uploaded into this conversation;
   * undefined when one is unknown, expired or another conversation's.
   */
  async resolve(conversationId: string, ids: readonly string[]): Promise<Attachment[] | undefined> {
    const out: Attachment[] = [];
    for (const id of ids) {
      if (!(await this.mayRead(conversationId, id))) return undefined;
      const found = await this.#attachments.get(id);
      if (!found) return undefined;
      out.push(this.#attachments.describe(id, found));
    }
    return out;
  }

  /** An outbound message's files that are this gateway's own become readable by the visitor too. */
  async grantOutbound(conversationId: string, attachments: readonly Attachment[]): Promise<void> {
    for (const a of attachments) {
      const id = OWN_URL_RE.exec(a.url)?.[1];
      if (id) await this.grant(conversationId, id);
    }
  }
}

/** The visitor token of `Authorization: Bearer <jwt>`; 401 otherwise (never read from the URL). */
function visitorOf(req: Request, opts: UploadOptions): string {
  const header = req.headers.authorization ?? '';
  const match = /^Bearer ([^\s]+)$/.exec(header);
  if (!match) {
    opts.rejected('upload_unauthenticated');
    throw new GatewayError('GW_ERR_UNAUTHORIZED', 'Send the visitor token as Authorization: Bearer <token>');
  }
  const check = opts.verify(match[1]!);
  if (!check.ok) {
    opts.rejected('upload_unauthenticated');
    throw new GatewayError(
      'GW_ERR_UNAUTHORIZED',
      check.reason === 'expired' ? 'The visitor token expired' : 'The visitor token is not valid',
    );
  }
  return check.visitor.id;
}

async function conversationOf(
  req: Request,
  opts: UploadOptions,
  visitorId = visitorOf(req, opts),
): Promise<string> {
  const conversation = await opts.store.findConversation('webchat', visitorId);
  if (!conversation) {
    throw new GatewayError('GW_ERR_CONFLICT', 'Open the chat (connect the socket) before sending a file');
  }
  return conversation.id;
}

/** The file name the browser sent, made safe to store and to put in a header later. */
export function fileName(header: string | string[] | undefined): string {
  let name = Array.isArray(header) ? (header[0] ?? '') : (header ?? '');
  try {
    name = decodeURIComponent(name);
  } catch {
    /* not percent-encoded: taken as it is */
  }
  // No directories, no control characters; the API route escapes what a header cannot carry.
  // biome-ignore lint/suspicious/noControlCharactersInRegex: stripping control characters is the point
  name = (name.split(/[\\/]/).pop() ?? '').replace(/[\u0000-\u001f\u007f]/g, '').trim();
  return name.slice(0, MAX_NAME_CHARS) || 'upload';
}

/** CORS for pages on other origins, restricted to the origins allowed to open the socket. */
function cors(opts: UploadOptions, methods: string): RequestHandler {
  return (req, res, next) => {
    const origin = req.headers.origin;
    if (origin !== undefined) {
      if (!opts.originAllowed(origin, req.headers.host)) {
        opts.rejected('origin');
        next(new GatewayError('GW_ERR_CSRF_REFUSED', 'This page’s origin may not use the web chat'));
        return;
      }
      res.setHeader('Access-Control-Allow-Origin', origin);
      res.setHeader('Vary', 'Origin');
    }
    if (req.method === 'OPTIONS') {
      res.setHeader('Access-Control-Allow-Methods', methods);
      res.setHeader('Access-Control-Allow-Headers', 'authorization, content-type, x-file-name');
      res.setHeader('Access-Control-Max-Age', '600');
      res.status(204).end();
      return;
    }
    next();
  };
}

export function mountUploads(router: Router, files: WebChatFiles, opts: UploadOptions): void {
  const readBody = express.raw({ type: () => true, limit: Math.max(opts.maxBytes, 1), inflate: false });
  const tooLarge = () => {
    opts.rejected('upload_too_large');
    return new GatewayError('GW_ERR_PAYLOAD_TOO_LARGE', `The file is larger than ${opts.maxBytes} bytes`, {
      limit: opts.maxBytes,
    });
  };

  const buckets = new Map<string, TokenBucket>();
  const allowed = (visitorId: string): boolean => {
    let bucket = buckets.get(visitorId);
    if (!bucket) {
      bucket = new TokenBucket(UPLOADS_PER_MINUTE / 60, UPLOADS_PER_MINUTE);
      if (buckets.size >= MAX_TRACKED_VISITORS) buckets.delete(buckets.keys().next().value!);
      buckets.set(visitorId, bucket);
    }
    return bucket.take();
  };

  router.options(UPLOAD_PATH, cors(opts, 'POST'));
  router.post(UPLOAD_PATH, cors(opts, 'POST'), async (req, res, next) => {
    try {
      if (opts.maxBytes === 0) {
        throw new GatewayError('GW_ERR_NOT_FOUND', 'File uploads are turned off on this gateway');
      }
      const visitorId = visitorOf(req, opts);
      if (!allowed(visitorId)) {
        opts.rejected('upload_rate_limited');
        throw new GatewayError(
          'GW_ERR_RATE_LIMITED',
          `More than ${UPLOADS_PER_MINUTE} files a minute; wait a little`,
          { retryAfter: Math.ceil(60 / UPLOADS_PER_MINUTE) },
        );
      }
      const conversationId = await conversationOf(req, opts, visitorId);
      // Refused before reading when the length is announced; otherwise the reader stops at the limit.
      if (Number(req.headers['content-length'] ?? 0) > opts.maxBytes) throw tooLarge();
      const body = await new Promise<Buffer>((resolve, reject) => {
        readBody(req, res, (err?: unknown) => {
          if (err) {
            reject((err as { type?: string }).type === 'entity.too.large' ? tooLarge() : err);
            return;
          }
          resolve(Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0));
        });
      });
      if (body.length === 0) {
        opts.rejected('upload_empty');
        throw new GatewayError('GW_ERR_BAD_REQUEST', 'The file is empty');
      }
      const type = sniffType(body);
      if (!type || !opts.types.includes(type)) {
        opts.rejected('upload_type');
        throw new GatewayError(
          'GW_ERR_UNSUPPORTED_MEDIA_TYPE',
          `This kind of file cannot be sent here; allowed: ${opts.types.join(', ')}`,
          { allowed: opts.types },
        );
      }
      const name = fileName(req.headers['x-file-name']);
      // Kept with its conversation's id, so erasing the conversation (contact erasure, retention)
      // sweeps the file along with the record of who may read it.
      const stored = await opts.attachments.put(
        `webchat\n${conversationId}\n${randomUUID()}`,
        0,
        { name, contentType: type, content: body },
        conversationId,
      );
      const id = OWN_URL_RE.exec(stored.url)![1]!;
      await files.grant(conversationId, id);
      req.log?.info({ conversationId, id, size: body.length, type }, 'web-chat file uploaded');
      res
        .status(201)
        .set('cache-control', 'no-store')
        .json({ id, ...stored });
    } catch (err) {
      next(err);
    }
  });

  const serve = attachmentRoute(opts.attachments);
  router.options(DOWNLOAD_PATH, cors(opts, 'GET'));
  router.get(DOWNLOAD_PATH, cors(opts, 'GET'), async (req, res, next) => {
    try {
      const conversationId = await conversationOf(req, opts);
      const id = String(req.params.id ?? '');
      // Another conversation's file answers like a missing one: ids are not confirmed to strangers.
      if (!(await files.mayRead(conversationId, id))) {
        throw new GatewayError('GW_ERR_NOT_FOUND', `Attachment ${id.slice(0, 64)} not found`);
      }
      await serve(req, res, next);
    } catch (err) {
      next(err);
    }
  });
}
