/**
 * A recording fake of Twilio's Messages REST API on loopback, reached by the real twilio client through
 * `TWILIO_API_URL`, plus the Twilio side of webhooks: form posts signed at run time with twilio-node's
 * own `getExpectedTwilioSignature`.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import twilio from 'twilio';

export const ACCOUNT_SID = `AC${'0123456789abcdef'.repeat(2)}`;
export const AUTH_TOKEN = 'test_auth_token_0123456789abcdef';

/** One request the fake received. */
export interface RecordedRequest {
  method: string;
  path: string;
  /** The Basic-auth user name (the account SID). */
  user: string;
  /** Form fields; a repeated field (`MediaUrl`) keeps every value. */
  form: Record<string, string[]>;
  /** Form fields' first values, for short assertions. */
  fields: Record<string, string>;
  /** What the fake answered. */
  status: number;
  sid?: string;
  at: number;
}

/**
 * A scripted answer for the next create call: an error status with Twilio's error body, or 201 (a normal
 * create). Without one the fake answers 201 with a fresh SID.
 */
export interface Scripted {
  status: number;
  code?: number;
  message?: string;
  retryAfter?: string;
}

export class FakeTwilioApi {
  readonly requests: RecordedRequest[] = [];
  /** Answers for the next calls, in order. */
  readonly script: Scripted[] = [];
  url = '';
  #server: Server;
  #createdCount = 0;

  private constructor() {
    this.#server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const form: Record<string, string[]> = {};
        for (const [k, v] of new URLSearchParams(Buffer.concat(chunks).toString('utf8'))) {
          form[k] = [...(form[k] ?? []), v];
        }
        const fields = Object.fromEntries(Object.entries(form).map(([k, v]) => [k, v[0] ?? '']));
        const auth = Buffer.from(
          (req.headers.authorization ?? '').replace(/^Basic /, ''),
          'base64',
        ).toString();
        const record: RecordedRequest = {
          method: req.method ?? '',
          path: req.url ?? '',
          user: auth.split(':')[0] ?? '',
          form,
          fields,
          status: 0,
          at: Date.now(),
        };
        this.requests.push(record);
        // Messaging v2 Typing Indicators (twilio-node lib/rest/messaging/v2/typingIndicator.js):
        // a form with `channel` and `messageId`, answered `{ "success": true }`.
        if (record.path === '/v2/Indicators/Typing.json') {
          const ok =
            record.method === 'POST' &&
            fields.channel === 'whatsapp' &&
            /^(SM|MM)[0-9a-f]{32}$/.test(fields.messageId ?? '');
          record.status = ok ? 200 : 400;
          res.writeHead(record.status, { 'content-type': 'application/json' });
          res.end(
            JSON.stringify(
              ok ? { success: true } : { code: 21211, message: 'Invalid messageId', status: 400 },
            ),
          );
          return;
        }
        const next = this.script.shift();
        if (!/\/2010-04-01\/Accounts\/AC[0-9a-f]{32}\/Messages\.json$/.test(record.path)) {
          record.status = 404;
          res.writeHead(404, { 'content-type': 'application/json' });
          res.end(
            JSON.stringify({ code: 20404, message: 'The requested resource was not found', status: 404 }),
          );
          return;
        }
        if (next && next.status !== 201) {
          record.status = next.status;
          const headers: Record<string, string> = { 'content-type': 'application/json' };
          if (next.retryAfter) headers['retry-after'] = next.retryAfter;
          res.writeHead(next.status, headers);
          res.end(
            JSON.stringify({
              code: next.code,
              message: next.message ?? `HTTP ${next.status}`,
              more_info: next.code ? `https://www.twilio.com/docs/errors/${next.code}` : undefined,
              status: next.status,
            }),
          );
          return;
        }
        const sid = `${fields.MediaUrl && !fields.Body ? 'MM' : 'SM'}${randomBytes(16).toString('hex')}`;
        record.status = 201;
        record.sid = sid;
        this.#createdCount++;
        res.writeHead(201, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            sid,
            account_sid: ACCOUNT_SID,
            to: fields.To,
            from: fields.From,
            body: fields.Body ?? '',
            status: 'queued',
            num_media: String(form.MediaUrl?.length ?? 0),
            api_version: '2010-04-01',
          }),
        );
      });
    });
  }

  static async start(): Promise<FakeTwilioApi> {
    const fake = new FakeTwilioApi();
    await new Promise<void>((resolve) => fake.#server.listen(0, '127.0.0.1', resolve));
    fake.url = `http://127.0.0.1:${(fake.#server.address() as AddressInfo).port}`;
    return fake;
  }

  /** How many creates succeeded: {@link created}'s length without building it (for polling loops). */
  createdCount(): number {
    return this.#createdCount;
  }

  /** Successful creates, in order. */
  created(): RecordedRequest[] {
    return this.requests.filter((r) => r.status === 201);
  }

  /** Typing indicator requests, in order. */
  typing(): RecordedRequest[] {
    return this.requests.filter((r) => r.path === '/v2/Indicators/Typing.json');
  }

  reset(): void {
    this.requests.length = 0;
    this.#createdCount = 0;
    this.script.length = 0;
  }

  close(): Promise<void> {
    this.#server.closeAllConnections();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }
}

/** Parameters of a webhook; a repeated parameter is an array. */
export type WebhookParams = Record<string, string | string[]>;

export interface PostOptions {
  /** The URL Twilio was configured with (what it signs); defaults to the URL posted to. */
  signedUrl?: string;
  token?: string;
  /** Replaces the computed signature; `null` sends none. */
  signature?: string | null;
  contentType?: string;
  /** Sends this exact body instead of the encoded parameters. */
  rawBody?: string;
  /** Extra request headers (a proxy's X-Forwarded-*). */
  headers?: Record<string, string>;
}

/** Encodes parameters like Twilio does (a space as `+`), repeated names repeated. */
export function encodeForm(params: WebhookParams): string {
  const form = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) for (const value of [v].flat()) form.append(k, value);
  return form.toString();
}

/** Posts a webhook the way Twilio does: form-encoded, signed over the configured URL and decoded params. */
export async function postWebhook(
  url: string,
  params: WebhookParams,
  opts: PostOptions = {},
): Promise<Response> {
  const signature =
    opts.signature === undefined
      ? twilio.getExpectedTwilioSignature(opts.token ?? AUTH_TOKEN, opts.signedUrl ?? url, params)
      : opts.signature;
  return fetch(url, {
    method: 'POST',
    headers: {
      'content-type': opts.contentType ?? 'application/x-www-form-urlencoded; charset=UTF-8',
      ...(signature === null ? {} : { 'x-twilio-signature': signature }),
      ...opts.headers,
    },
    body: opts.rawBody ?? encodeForm(params),
  });
}

/** A fresh message SID (`SM` + 32 hex digits). */
export function newSid(prefix = 'SM'): string {
  return `${prefix}${randomBytes(16).toString('hex')}`;
}

/** An inbound SMS's parameters, as Twilio posts them. */
export function smsParams(over: Partial<Record<string, string>> = {}): Record<string, string> {
  const sid = over.MessageSid ?? newSid();
  return {
    ToCountry: 'US',
    SmsMessageSid: sid,
    NumMedia: '0',
    SmsSid: sid,
    SmsStatus: 'received',
    Body: 'Hello, world! Çava? 👋',
    To: '+15005550006',
    NumSegments: '1',
    MessageSid: sid,
    AccountSid: ACCOUNT_SID,
    From: '+14155551234',
    ApiVersion: '2010-04-01',
    ...over,
  } as Record<string, string>;
}

/** An inbound WhatsApp message's parameters. */
export function whatsappParams(over: Partial<Record<string, string>> = {}): Record<string, string> {
  const sid = over.MessageSid ?? newSid();
  return {
    SmsMessageSid: sid,
    NumMedia: '0',
    ProfileName: 'Jane Doe',
    MessageType: 'text',
    SmsSid: sid,
    WaId: '14155551234',
    SmsStatus: 'received',
    Body: 'hi from WhatsApp',
    To: 'whatsapp:+14155238886',
    NumSegments: '1',
    ReferralNumMedia: '0',
    MessageSid: sid,
    AccountSid: ACCOUNT_SID,
    From: 'whatsapp:+14155551234',
    ApiVersion: '2010-04-01',
    ...over,
  } as Record<string, string>;
}

/** A status callback's parameters. */
export function statusParams(
  sid: string,
  status: string,
  over: Partial<Record<string, string>> = {},
): Record<string, string> {
  return {
    SmsSid: sid,
    SmsStatus: status,
    MessageStatus: status,
    To: '+14155551234',
    MessageSid: sid,
    AccountSid: ACCOUNT_SID,
    From: '+15005550006',
    ApiVersion: '2010-04-01',
    ...over,
  } as Record<string, string>;
}
