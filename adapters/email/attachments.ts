/**
 * @module Attachments of inbound mail. The content is kept base64-encoded in the store's key/value
 * facility (shared by every gateway process; bounded by `EMAIL_MAX_BYTES` per mail) for
 * {@link ATTACHMENT_TTL_S}, and served at `GET /v1/attachments/:id` behind the same API keys as `/v1`.
 */
import { createHash } from 'node:crypto';
import type { RequestHandler } from 'express';
import { type Attachment, GatewayError, type KeyValue } from '../../src/core/index.js';

/** How long attachment content is kept; the message keeps its name, type and size after that. */
export const ATTACHMENT_TTL_S = 30 * 86_400;

const ID_RE = /^att_[0-9a-f]{32}$/;

interface StoredAttachment {
  name: string;
  contentType: string;
  size: number;
  data: string;
  /** The conversation it belongs to, when known: erasing the conversation's traces finds it by this. */
  conversationId?: string;
}

export class AttachmentStore {
  readonly #kv: KeyValue;
  readonly #baseUrl: string;

  /** @param baseUrl `PUBLIC_URL`, without a trailing slash. */
  constructor(kv: KeyValue, baseUrl: string) {
    this.#kv = kv;
    this.#baseUrl = baseUrl;
  }

  /**
   * Stores one attachment under an id derived from the message's conversation key, dedupe key and
   * position, so a resent mail maps to the same record; set-if-absent, so a forged resend can never
   * replace stored content.
   */
  async put(
    scope: string,
    index: number,
    file: { name: string; contentType: string; content: Buffer },
    conversationId?: string,
  ): Promise<Attachment> {
    const id = `att_${createHash('sha256').update(`${scope}\n${index}`).digest('hex').slice(0, 32)}`;
    const record: StoredAttachment = {
      name: file.name,
      contentType: file.contentType,
      size: file.content.length,
      data: file.content.toString('base64'),
      ...(conversationId !== undefined ? { conversationId } : {}),
    };
    await this.#kv.setIfAbsent(`email:att:${id}`, JSON.stringify(record), ATTACHMENT_TTL_S);
    return this.describe(id, record);
  }

  /** The message's attachment entry for a stored record. */
  describe(id: string, record: Pick<StoredAttachment, 'name' | 'contentType' | 'size'>): Attachment {
    return {
      url: `${this.#baseUrl}/v1/attachments/${id}`,
      contentType: record.contentType,
      name: record.name,
      size: record.size,
    };
  }

  async get(id: string): Promise<StoredAttachment | null> {
    if (!ID_RE.test(id)) return null;
    const raw = await this.#kv.get(`email:att:${id}`);
    return raw ? (JSON.parse(raw) as StoredAttachment) : null;
  }
}

/**
 * `GET /v1/attachments/:id`, mounted behind the API key check: the attachment's bytes; 404 for an unknown or expired id. Served as a download (`attachment`
 * disposition, `nosniff`) so a browser never renders received HTML or SVG in the gateway's origin.
 */
export function attachmentRoute(store: AttachmentStore): RequestHandler {
  return async function attachmentDownload(req, res, next) {
    try {
      const id = String(req.params.id ?? '');
      const found = await store.get(id);
      if (!found) throw new GatewayError('GW_ERR_NOT_FOUND', `Attachment ${id.slice(0, 64)} not found`);
      const body = Buffer.from(found.data, 'base64');
      res.setHeader('Content-Type', found.contentType);
      res.setHeader('Content-Length', String(body.length));
      res.setHeader('X-Content-Type-Options', 'nosniff');
      res.setHeader('Cache-Control', 'private, no-store');
      res.setHeader(
        'Content-Disposition',
        `attachment; filename="${found.name.replace(/[^\x20-\x7e]|["\\]/g, '_')}"; filename*=UTF-8''${encodeURIComponent(found.name)}`,
      );
      res.status(200).end(body);
    } catch (err) {
      next(err);
    }
  };
}
