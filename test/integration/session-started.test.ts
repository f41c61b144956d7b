/**
 * `session.started` for a channel conversation's first session (README: "first message"), once per
 * conversation: SMS, WhatsApp, Slack, email (Mailgun route) and web chat, each with the same delivery
 * sent to two gateway instances on one Redis at the same moment, as a provider retry to another
 * instance does. Signatures are made at run time (twilio-node, Slack's and Mailgun's schemes).
 */
import { createHmac, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DomainEvent } from '../../src/core/index.js';
import {
  eventEnvelope,
  FakeSlackApi,
  nextTs,
  SIGNING_SECRET,
  signSlack,
  TEAM_ID,
} from '../fakes/slack-api.js';
import { SmtpSink } from '../fakes/smtp-sink.js';
import {
  ACCOUNT_SID,
  AUTH_TOKEN,
  FakeTwilioApi,
  postWebhook,
  smsParams,
  whatsappParams,
} from '../fakes/twilio-api.js';
import { eventually } from '../helpers/eventually.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { RedisServer, redisAvailable } from '../helpers/redis.js';
import { ChatClient, ORIGIN, visitorToken, WEBCHAT_SECRET } from '../helpers/webchat-client.js';

const PUBLIC_URL = 'https://chat.example.com';
const MAILGUN_KEY = 'test-webhook-signing-key-0123456789';

describe.skipIf(!redisAvailable())(
  'session.started for a channel conversation (two instances, Redis)',
  () => {
    let redis: RedisServer;
    let twilioApi: FakeTwilioApi;
    let slackApi: FakeSlackApi;
    let sink: SmtpSink;
    const gateways: TestGateway[] = [];
    const events: DomainEvent[] = [];

    beforeAll(async () => {
      [redis, twilioApi, slackApi, sink] = await Promise.all([
        RedisServer.start(),
        FakeTwilioApi.start(),
        FakeSlackApi.start(),
        SmtpSink.start(),
      ]);
      const env = {
        REDIS_URL: redis.url,
        PUBLIC_URL,
        TWILIO_ACCOUNT_SID: ACCOUNT_SID,
        TWILIO_AUTH_TOKEN: AUTH_TOKEN,
        TWILIO_API_URL: twilioApi.url,
        SLACK_SIGNING_SECRET: SIGNING_SECRET,
        SLACK_BOT_TOKEN: 'xoxb-test-0000-token',
        SLACK_API_URL: slackApi.url,
        SLACK_TEAM_ID: TEAM_ID,
        EMAIL_FROM: 'Example Support <support@help.example.com>',
        SMTP_URL: sink.url,
        MAILGUN_SIGNING_KEY: MAILGUN_KEY,
        EMAIL_BOUNCE_SECRET: 'test-bounce-secret-0123456789abcdef',
        WEBCHAT_JWT_SECRET: WEBCHAT_SECRET,
        WEBCHAT_ALLOWED_ORIGINS: ORIGIN,
      };
      for (let i = 0; i < 2; i++) {
        const gw = await startGateway(env);
        gw.gateway.deps.events.on((e) => {
          events.push(e);
        });
        gateways.push(gw);
      }
    });

    afterAll(async () => {
      for (const gw of gateways) await gw.stop();
      await Promise.all([twilioApi?.close(), slackApi?.close(), sink?.stop()]);
      await redis?.dispose();
    });

    const ofType = (type: string, conversationId: string) =>
      events.filter((e) => e.type === type && e.conversationId === conversationId);

    /** Sends `deliver(gw)` to both instances at once, then a second message through the first. */
    async function expectOnce(
      channel: string,
      deliver: (gw: TestGateway, round: number) => Promise<unknown>,
    ): Promise<void> {
      const before = new Set(events.map((e) => e.conversationId));
      await Promise.all(gateways.map((gw) => deliver(gw, 0)));
      const created = await eventually(() =>
        events.find(
          (e) =>
            e.type === 'conversation.created' &&
            e.conversation?.channel === channel &&
            !before.has(e.conversationId),
        ),
      );
      const id = created.conversationId;
      await eventually(() => (ofType('message.created', id).length >= 1 ? true : undefined));
      await deliver(gateways[0]!, 1);
      await eventually(() =>
        ofType('message.created', id).filter((e) => e.message?.direction === 'inbound').length === 2
          ? true
          : undefined,
      );
      expect(ofType('conversation.created', id)).toHaveLength(1);
      const started = ofType('session.started', id);
      expect(started).toHaveLength(1);
      expect(started[0]).toMatchObject({ seq: 0, sessionId: created.conversation?.sessionId });
      // Announced before the conversation's first message.
      const order = events.filter((e) => e.conversationId === id).map((e) => e.type);
      expect(order.indexOf('session.started')).toBeLessThan(order.indexOf('message.created'));
    }

    it('SMS', async () => {
      const from = `+1415555${String(Date.now()).slice(-4)}`;
      const first = smsParams({ From: from, Body: 'first' });
      await expectOnce('sms', (gw, round) => {
        const params = round === 0 ? first : smsParams({ From: from, Body: 'second' });
        return postWebhook(`${gw.url}/webhooks/twilio`, params, {
          signedUrl: `${PUBLIC_URL}/webhooks/twilio`,
        });
      });
    });

    it('WhatsApp', async () => {
      const from = `whatsapp:+1415666${String(Date.now()).slice(-4)}`;
      const first = whatsappParams({ From: from, Body: 'first' });
      await expectOnce('whatsapp', (gw, round) => {
        const params = round === 0 ? first : whatsappParams({ From: from, Body: 'second' });
        return postWebhook(`${gw.url}/webhooks/twilio`, params, {
          signedUrl: `${PUBLIC_URL}/webhooks/twilio`,
        });
      });
    });

    it('Slack', async () => {
      const channel = `D${randomBytes(4).toString('hex').toUpperCase()}`;
      const dm = (text: string) => {
        const ts = nextTs();
        return { type: 'message', channel, channel_type: 'im', user: 'U0001', text, ts, event_ts: ts };
      };
      const first = JSON.stringify(eventEnvelope(dm('first')));
      await expectOnce('slack', (gw, round) => {
        const body = round === 0 ? first : JSON.stringify(eventEnvelope(dm('second')));
        return fetch(`${gw.url}/webhooks/slack/events`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...signSlack(body) },
          body,
        });
      });
    });

    it('email (Mailgun route)', async () => {
      const sender = `ann-${randomBytes(4).toString('hex')}@example.org`;
      const firstId = `<first-${randomBytes(6).toString('hex')}@example.org>`;
      const form = (messageId: string, inReplyTo?: string) => {
        const timestamp = String(Math.floor(Date.now() / 1000));
        const token = randomBytes(25).toString('hex');
        // Mailgun's own verdict sits above its Received line: the sender is authenticated.
        const headers = [
          ['X-Mailgun-Dkim-Check-Result', 'Pass'],
          ['X-Mailgun-Spf', 'Pass'],
          ['Received', 'from mail.example.org (mail.example.org [192.0.2.10]) by mxa.mailgun.org with ESMTP'],
          ['Message-Id', messageId],
          ['Subject', 'Order status'],
          ...(inReplyTo ? [['In-Reply-To', inReplyTo]] : []),
        ];
        return new URLSearchParams({
          sender,
          from: `Ann <${sender}>`,
          recipient: 'support@help.example.com',
          subject: 'Order status',
          'body-plain': 'Where is my order?',
          'stripped-text': 'Where is my order?',
          'Message-Id': messageId,
          'message-headers': JSON.stringify(headers),
          timestamp,
          token,
          signature: createHmac('sha256', MAILGUN_KEY)
            .update(timestamp + token)
            .digest('hex'),
        });
      };
      await expectOnce('email', (gw, round) =>
        fetch(`${gw.url}/webhooks/email/mailgun`, {
          method: 'POST',
          body:
            round === 0
              ? form(firstId)
              : form(`<second-${randomBytes(6).toString('hex')}@example.org>`, firstId),
        }),
      );
    });

    it('API: POST /v1/conversations and POST /v1/sessions announce the first session once', async () => {
      for (const path of ['/v1/conversations', '/v1/sessions']) {
        const res = await gateways[1]!.api(path, { method: 'POST', json: {} });
        expect(res.status, path).toBe(201);
        const body = (await res.json()) as { id?: string; conversationId?: string };
        const id = (body.conversationId ?? body.id)!;
        const started = await eventually(() => {
          const found = ofType('session.started', id);
          return found.length > 0 ? found : undefined;
        });
        expect(ofType('conversation.created', id), path).toHaveLength(1);
        expect(started, path).toHaveLength(1);
        const order = events.filter((e) => e.conversationId === id).map((e) => e.type);
        expect(order, path).toEqual(['conversation.created', 'session.started']);
      }
    });

    it('web chat', async () => {
      const token = visitorToken({ sub: `visitor-${randomBytes(4).toString('hex')}` });
      const clients: ChatClient[] = [];
      try {
        await expectOnce('webchat', async (gw, round) => {
          if (round === 0) {
            const client = await ChatClient.ready(gw.url, { token });
            clients.push(client);
            // The same message from both sockets, as a widget resending after a reconnect does.
            await client.say('first', 'c-first');
          } else {
            await clients[0]!.say('second');
          }
        });
      } finally {
        for (const client of clients) await client.end();
      }
    });
  },
);
