/**
 * One gateway on a private Redis with every customer channel a contacts test needs: signed Twilio
 * webhooks (SMS and WhatsApp) against the Twilio fake, web chat over a real WebSocket with tokens
 * signed at run time, the built-in SMTP listener taking DKIM-signed mail (keys made at run time and
 * published through mailauth's resolver hook) and answering into an SMTP sink, and optionally Slack
 * against its fake. The contacts suites (test/integration/contacts*.test.ts) share it.
 */
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import nodemailer from 'nodemailer';
import { expect } from 'vitest';
import type { Contact, MergeSuggestion } from '../../src/contacts/model.js';
import type { DomainEvent } from '../../src/core/events.js';
import type { Conversation, Message } from '../../src/core/model.js';
import type { Bot, BotRequest } from '../../src/pipeline/bot/types.js';
import { dkimSigned, FakeDns } from '../fakes/dns.js';
import { FakeSlackApi, SIGNING_SECRET, BOT_TOKEN as SLACK_BOT_TOKEN, TEAM_ID } from '../fakes/slack-api.js';
import { SmtpSink } from '../fakes/smtp-sink.js';
import {
  ACCOUNT_SID,
  AUTH_TOKEN,
  FakeTwilioApi,
  postWebhook,
  smsParams,
  whatsappParams,
} from '../fakes/twilio-api.js';
import { startGateway, type TestGateway } from './gateway.js';
import { freePort, hasRedisServer, RedisServer } from './redis.js';
import { ChatClient, ORIGIN, visitorToken, WEBCHAT_SECRET } from './webchat-client.js';

export const PUBLIC_URL = 'https://chat.example.com';
export const SUPPORT = 'support@help.example.com';

/** A bot that answers like the demo bot and keeps every request it got. */
export class RecordingBot implements Bot {
  readonly kind = 'http' as const;
  readonly requests: BotRequest[] = [];
  async reply(request: BotRequest) {
    this.requests.push(request);
    return { replies: [{ text: `You said: ${request.message.text}` }] };
  }
}

export interface CustomerRigOptions {
  /** Extra settings (e.g. `CONVERSATION_SCOPE`). */
  env?: Record<string, string>;
  /** Also run the Slack channel against its fake. */
  slack?: boolean;
  /** Key prefix label, so a failing suite's keys are easy to tell apart. */
  label: string;
}

export class CustomerRig {
  readonly bot = new RecordingBot();
  readonly events: DomainEvent[] = [];
  readonly clients: ChatClient[] = [];
  /** The private half of signed.example's DKIM key: its mail can only pass by this signature. */
  signedKey = '';
  /** evil.test's key: its own signatures and SPF pass, but it is never the From domain it signs. */
  evilKey = '';
  gw!: TestGateway;
  fake!: FakeTwilioApi;
  slack: FakeSlackApi | undefined;
  redis!: Redis;
  prefix = '';
  #server: RedisServer | undefined;
  #sink!: SmtpSink;
  #mailer!: nodemailer.Transporter;
  #seq = 0;

  get sink(): SmtpSink {
    return this.#sink;
  }

  static async start(opts: CustomerRigOptions): Promise<CustomerRig> {
    const rig = new CustomerRig();
    await rig.#start(opts);
    return rig;
  }

  async #start(opts: CustomerRigOptions): Promise<void> {
    let url = process.env.REDIS_URL ?? '';
    if (hasRedisServer()) {
      this.#server = await RedisServer.start();
      url = this.#server.url;
    }
    this.prefix = `${opts.label}-${randomUUID().slice(0, 8)}`;
    this.redis = new Redis(url);
    this.fake = await FakeTwilioApi.start();
    if (opts.slack) this.slack = await FakeSlackApi.start();
    this.#sink = await SmtpSink.start();
    const smtpPort = await freePort();
    const dns = new FakeDns()
      .spf('signed.example', 'v=spf1 -all')
      .dmarc('signed.example')
      .spf('evil.test', 'v=spf1 ip4:127.0.0.1 -all');
    this.signedKey = dns.dkimKey('signed.example');
    this.evilKey = dns.dkimKey('evil.test');
    this.gw = await startGateway(
      {
        REDIS_URL: url,
        REDIS_KEY_PREFIX: this.prefix,
        PUBLIC_URL,
        TWILIO_ACCOUNT_SID: ACCOUNT_SID,
        TWILIO_AUTH_TOKEN: AUTH_TOKEN,
        TWILIO_API_URL: this.fake.url,
        ...(this.slack
          ? {
              SLACK_SIGNING_SECRET: SIGNING_SECRET,
              SLACK_BOT_TOKEN,
              SLACK_API_URL: this.slack.url,
              SLACK_TEAM_ID: TEAM_ID,
            }
          : {}),
        WEBCHAT_JWT_SECRET: WEBCHAT_SECRET,
        WEBCHAT_ALLOWED_ORIGINS: ORIGIN,
        EMAIL_FROM: `Example Support <${SUPPORT}>`,
        SMTP_URL: this.#sink.url,
        EMAIL_SMTP_PORT: String(smtpPort),
        EMAIL_SMTP_HOST: '127.0.0.1',
        EMAIL_BOUNCE_SECRET: 'test-bounce-secret-0123456789abcdef',
        ...opts.env,
      },
      { bot: this.bot },
      { email: { resolver: dns.resolver } },
    );
    this.gw.gateway.deps.events.on((e) => {
      this.events.push(e);
    });
    this.#mailer = nodemailer.createTransport({
      host: '127.0.0.1',
      port: smtpPort,
      ignoreTLS: true,
      name: 'mail.example.org',
    });
  }

  async stop(): Promise<void> {
    for (const c of this.clients) c.ws.terminate();
    this.#mailer?.close();
    await this.gw?.stop();
    await this.#sink?.stop();
    await this.fake?.close();
    await this.slack?.close();
    if (this.redis) {
      const keys = await this.redis.keys(`${this.prefix}:*`);
      if (keys.length > 0) await this.redis.unlink(...keys);
      this.redis.disconnect();
    }
    await this.#server?.dispose();
  }

  /** A `/v1` call that must succeed; its JSON body. */
  async json<T>(path: string, init?: RequestInit & { json?: unknown }): Promise<T> {
    const res = await this.gw.api(path, init);
    expect(res.status, `${init?.method ?? 'GET'} ${path}`).toBeLessThan(300);
    return (await res.json()) as T;
  }

  async contactOf(channel: string, address: string): Promise<Contact | undefined> {
    const page = await this.json<{ items: Contact[] }>(
      `/v1/contacts?identity=${encodeURIComponent(`${channel}:${address}`)}`,
    );
    return page.items[0];
  }

  async suggestions(): Promise<MergeSuggestion[]> {
    return (await this.json<{ items: MergeSuggestion[] }>('/v1/contacts/suggestions')).items;
  }

  async conversationsOf(contactId: string): Promise<Conversation[]> {
    return (await this.json<{ items: Conversation[] }>(`/v1/contacts/${contactId}/conversations`)).items;
  }

  async messagesOf(conversationId: string): Promise<Message[]> {
    return (await this.json<{ items: Message[] }>(`/v1/conversations/${conversationId}/messages?take=200`))
      .items;
  }

  /** A signed inbound SMS. */
  async sms(from: string, text: string): Promise<void> {
    const path = '/webhooks/twilio';
    const res = await postWebhook(`${this.gw.url}${path}`, smsParams({ From: from, Body: text }), {
      signedUrl: `${PUBLIC_URL}${path}`,
    });
    expect(res.status).toBe(200);
  }

  /** A signed inbound WhatsApp message through Twilio. */
  async whatsapp(from: string, text: string, over: Record<string, string> = {}): Promise<void> {
    const path = '/webhooks/twilio';
    const params = whatsappParams({ From: `whatsapp:${from}`, WaId: from.slice(1), Body: text, ...over });
    const res = await postWebhook(`${this.gw.url}${path}`, params, { signedUrl: `${PUBLIC_URL}${path}` });
    expect(res.status).toBe(200);
  }

  /** A web-chat visitor with these token claims says `text` (the socket stays open). */
  async chat(claims: Record<string, unknown>, text: string): Promise<ChatClient> {
    const client = await ChatClient.ready(this.gw.url, { token: visitorToken(claims) });
    this.clients.push(client);
    await client.say(text);
    return client;
  }

  /** A unique Message-ID. */
  mid(label: string): string {
    this.#seq += 1;
    return `<${label}-${this.#seq}-${Date.now()}@signed.example>`;
  }

  /** DKIM-signed mail from `address` (by signed.example's key unless told), sent over SMTP; its Message-ID. */
  async signedMail(address: string, text: string, opts: { key?: string; domain?: string } = {}) {
    const id = this.mid('m');
    const raw = await dkimSigned(
      mail(address, id, text),
      opts.domain ?? 'signed.example',
      opts.key ?? this.signedKey,
    );
    const envelopeFrom = opts.domain === 'evil.test' ? 'bounce@evil.test' : address;
    await this.#mailer.sendMail({ envelope: { from: envelopeFrom, to: SUPPORT }, raw });
    return id;
  }

  /** Sends raw mail as is (e.g. unsigned) through the gateway's SMTP listener. */
  async sendRaw(envelope: { from: string; to: string }, raw: string): Promise<void> {
    await this.#mailer.sendMail({ envelope, raw });
  }
}

export function mail(from: string, id: string, text: string): string {
  return [
    `From: ${from}`,
    `To: ${SUPPORT}`,
    'Subject: Hello',
    `Message-ID: ${id}`,
    `Date: ${new Date().toUTCString()}`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    '',
    text,
    '',
  ].join('\r\n');
}
