/**
 * A recording fake of Meta's Graph API for the WhatsApp Cloud API on loopback, reached through
 * `WHATSAPP_API_URL`: `POST /{version}/{phone-number-id}/messages` (answers a fresh `wamid` or a
 * scripted error; a `status` object such as a typing indicator gets `{ "success": true }`), `GET /{version}/{media-id}` (a download URL on this server) and the download
 * itself (only with the bearer token). Plus the Meta side of webhooks: bodies signed at run time with
 * node:crypto over the exact bytes sent.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export const ACCESS_TOKEN = `EAAG${'test_access_token_0123456789abcdef'.repeat(2)}`;
export const APP_SECRET = 'test_app_secret_0123456789abcdef';
export const VERIFY_TOKEN = 'my-verify-token';
export const PHONE_NUMBER_ID = '106540352242922';
export const API_VERSION = 'v23.0';

export interface RecordedRequest {
  method: string;
  path: string;
  authorization: string;
  /** The JSON body of a POST. */
  json?: Record<string, unknown>;
  status: number;
  wamid?: string;
  at: number;
}

/** A scripted answer for the next send: an error status with Meta's error body. */
export interface Scripted {
  status: number;
  code?: number;
  message?: string;
  details?: string;
  retryAfter?: string;
}

export class FakeWhatsAppCloudApi {
  readonly requests: RecordedRequest[] = [];
  readonly script: Scripted[] = [];
  /** Media served by id. */
  readonly media = new Map<string, { content: Buffer; mimeType: string }>();
  url = '';
  #server: Server;

  private constructor() {
    this.#server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const path = req.url ?? '';
        const record: RecordedRequest = {
          method: req.method ?? '',
          path,
          authorization: String(req.headers.authorization ?? ''),
          status: 0,
          at: Date.now(),
        };
        const text = Buffer.concat(chunks).toString('utf8');
        if (text) {
          try {
            record.json = JSON.parse(text) as Record<string, unknown>;
          } catch {
            record.json = { unparsable: text };
          }
        }
        this.requests.push(record);
        const answer = (status: number, body: unknown, headers: Record<string, string> = {}) => {
          record.status = status;
          res.writeHead(status, { 'content-type': 'application/json', ...headers });
          res.end(JSON.stringify(body));
        };
        if (record.authorization !== `Bearer ${ACCESS_TOKEN}`) {
          answer(401, {
            error: { message: 'Invalid OAuth access token.', type: 'OAuthException', code: 190 },
          });
          return;
        }
        const send = new RegExp(`^/${API_VERSION}/(\\d+)/messages$`).exec(path);
        if (send && req.method === 'POST' && record.json?.status !== undefined) {
          // A read receipt or typing indicator: `{ "success": true }` (never scripted).
          answer(200, { success: true });
          return;
        }
        if (send && req.method === 'POST') {
          const next = this.script.shift();
          if (next && next.status >= 300) {
            answer(
              next.status,
              {
                error: {
                  message: next.message ?? 'Error',
                  type: 'OAuthException',
                  code: next.code,
                  error_data: { messaging_product: 'whatsapp', details: next.details },
                  fbtrace_id: 'AbCdEf',
                },
              },
              next.retryAfter ? { 'retry-after': next.retryAfter } : {},
            );
            return;
          }
          const wamid = newWamid();
          record.wamid = wamid;
          const to = String(record.json?.to ?? '');
          answer(200, {
            messaging_product: 'whatsapp',
            contacts: [{ input: to, wa_id: to }],
            messages: [{ id: wamid }],
          });
          return;
        }
        const download = /^\/media-download\/([\w-]+)$/.exec(path);
        if (download && req.method === 'GET') {
          const found = this.media.get(download[1] ?? '');
          if (!found) return answer(404, { error: { message: 'not found', code: 100 } });
          record.status = 200;
          res.writeHead(200, {
            'content-type': found.mimeType,
            'content-length': String(found.content.length),
          });
          res.end(found.content);
          return;
        }
        const info = new RegExp(`^/${API_VERSION}/([\\w-]+)$`).exec(path);
        if (info && req.method === 'GET') {
          const id = info[1] ?? '';
          const found = this.media.get(id);
          if (!found) {
            answer(400, {
              error: { message: 'Unsupported get request.', type: 'GraphMethodException', code: 100 },
            });
            return;
          }
          answer(200, {
            messaging_product: 'whatsapp',
            url: `${this.url}/media-download/${id}`,
            mime_type: found.mimeType,
            sha256: 'x',
            file_size: found.content.length,
            id,
          });
          return;
        }
        answer(404, { error: { message: 'Unknown path', code: 100 } });
      });
    });
  }

  static async start(): Promise<FakeWhatsAppCloudApi> {
    const fake = new FakeWhatsAppCloudApi();
    await new Promise<void>((resolve) => fake.#server.listen(0, '127.0.0.1', resolve));
    fake.url = `http://127.0.0.1:${(fake.#server.address() as AddressInfo).port}`;
    return fake;
  }

  /** The message sends received, in order (read receipts and typing indicators apart). */
  sent(): RecordedRequest[] {
    return this.requests.filter(
      (r) => r.method === 'POST' && /\/messages$/.test(r.path) && r.json?.status === undefined,
    );
  }

  /** The typing indicators (and read receipts) received, in order. */
  statuses(): RecordedRequest[] {
    return this.requests.filter(
      (r) => r.method === 'POST' && /\/messages$/.test(r.path) && r.json?.status !== undefined,
    );
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}

export function newWamid(): string {
  return `wamid.${randomBytes(24).toString('base64url')}`;
}

export function sign(body: string | Buffer, secret = APP_SECRET): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/** A notification body carrying the given messages (and contacts) for our phone number id. */
export function notification(value: {
  messages?: Record<string, unknown>[];
  statuses?: Record<string, unknown>[];
  contacts?: Record<string, unknown>[];
}): Record<string, unknown> {
  return {
    object: 'whatsapp_business_account',
    entry: [
      {
        id: '102290129340398',
        changes: [
          {
            field: 'messages',
            value: {
              messaging_product: 'whatsapp',
              metadata: { display_phone_number: '15550783881', phone_number_id: PHONE_NUMBER_ID },
              ...value,
            },
          },
        ],
      },
    ],
  };
}

/** One inbound message from `waId` with the profile name. */
export function messageFrom(
  waId: string,
  message: Record<string, unknown>,
  name = 'Sheena Nelson',
): Record<string, unknown> {
  return notification({
    contacts: [{ profile: { name }, wa_id: waId }],
    messages: [{ from: waId, id: newWamid(), timestamp: String(Math.floor(Date.now() / 1000)), ...message }],
  });
}

export interface PostOptions {
  signature?: string | null;
  contentType?: string;
}

/** Posts a raw body as Meta would, signed over exactly these bytes unless told otherwise. */
export function postWebhook(url: string, body: string | Buffer, opts: PostOptions = {}): Promise<Response> {
  const headers: Record<string, string> = { 'content-type': opts.contentType ?? 'application/json' };
  const signature = opts.signature === undefined ? sign(body) : opts.signature;
  if (signature !== null) headers['x-hub-signature-256'] = signature;
  return fetch(url, { method: 'POST', headers, body });
}
