/**
 * PII redaction (SPEC §12) through every channel: a card number and an email address written by a
 * customer on web chat, SMS, WhatsApp, Slack, email (the Mailgun route) and the API channel reach the
 * HTTP bot and an outbound webhook receiver masked (`[card]`, `[email]`), appear in no log line, and
 * stay whole in the store for agents. With `PII_REDACT_STORE=true` the stored copy is masked too, with
 * its entities recomputed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Conversation, Message } from '../../src/core/index.js';
import { redactText } from '../../src/privacy/index.js';
import { BOT_SECRET, FakeBot } from '../fakes/bot.js';
import { MAILGUN_KEY, mailgunForm } from '../fakes/mailgun.js';
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
import { ChatClient, ORIGIN, visitorToken, WEBCHAT_SECRET } from '../helpers/webchat-client.js';
import { WebhookReceiver } from '../helpers/webhook-receiver.js';

const PUBLIC_URL = 'https://chat.example.com';
const CARD = '4242 4242 4242 4242';
const EMAIL = 'jane.roe@example.net';
/** What the customer writes on each channel; `tag` tells the channels apart. */
const said = (tag: string) => `${tag}: my card is ${CARD}, write to ${EMAIL} please`;
const masked = (tag: string) => `${tag}: my card is [card], write to [email] please`;

let bot: FakeBot;
let twilioApi: FakeTwilioApi;
let slackApi: FakeSlackApi;
let sink: SmtpSink;
let receiver: WebhookReceiver;
let gw: TestGateway;
const chats: ChatClient[] = [];

function env(extra: Record<string, string> = {}): Record<string, string> {
  return {
    PUBLIC_URL,
    BOT_URL: bot.url,
    BOT_SECRET,
    PII_REDACT: 'card,email',
    WEBHOOKS_ALLOW_PRIVATE: 'true',
    WEBCHAT_JWT_SECRET: WEBCHAT_SECRET,
    WEBCHAT_ALLOWED_ORIGINS: ORIGIN,
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
    ...extra,
  };
}

beforeAll(async () => {
  [bot, twilioApi, slackApi, sink, receiver] = await Promise.all([
    FakeBot.start(),
    FakeTwilioApi.start(),
    FakeSlackApi.start(),
    SmtpSink.start(),
    WebhookReceiver.start(),
  ]);
  gw = await startGateway(env());
  const res = await gw.api('/v1/webhooks', {
    method: 'POST',
    json: { url: `${receiver.url}/hook`, events: ['message.created'] },
  });
  expect(res.status).toBe(201);
  receiver.secrets = [((await res.json()) as { secret: string }).secret];
});

afterAll(async () => {
  await Promise.all(chats.map((c) => c.end()));
  await gw?.stop();
  await Promise.all([bot?.close(), twilioApi?.close(), slackApi?.close(), sink?.stop(), receiver?.close()]);
});

/** Writes `said(tag)` on one channel. */
const channels: Record<string, (tag: string) => Promise<void>> = {
  async webchat(tag) {
    const client = await ChatClient.ready(gw.url, { token: visitorToken({ sub: `pii-${tag}` }) });
    chats.push(client);
    client.send({ type: 'message', clientMessageId: `pii-${tag}`, text: said(tag) });
  },
  async sms(tag) {
    const res = await postWebhook(
      `${gw.url}/webhooks/twilio`,
      smsParams({ From: '+14155550191', Body: said(tag) }),
      {
        signedUrl: `${PUBLIC_URL}/webhooks/twilio`,
      },
    );
    expect(res.status).toBe(200);
  },
  async whatsapp(tag) {
    const params = whatsappParams({ From: 'whatsapp:+14155550192', WaId: '14155550192', Body: said(tag) });
    const res = await postWebhook(`${gw.url}/webhooks/twilio`, params, {
      signedUrl: `${PUBLIC_URL}/webhooks/twilio`,
    });
    expect(res.status).toBe(200);
  },
  async slack(tag) {
    const ts = nextTs();
    const event = {
      type: 'message',
      channel: 'D0PII01',
      channel_type: 'im',
      user: 'U0PII',
      text: said(tag),
      ts,
      event_ts: ts,
    };
    const body = JSON.stringify(eventEnvelope(event));
    const res = await fetch(`${gw.url}/webhooks/slack/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...signSlack(body) },
      body,
    });
    expect(res.status).toBe(200);
  },
  async email(tag) {
    const form = mailgunForm({ text: said(tag), subject: `Card ${CARD}` });
    const res = await fetch(`${gw.url}/webhooks/email/mailgun`, { method: 'POST', body: form });
    expect(res.status).toBe(200);
  },
  async api(tag) {
    const session = (await (
      await gw.api('/v1/sessions', { method: 'POST', json: { user: { name: 'Pia' } } })
    ).json()) as {
      conversationId: string;
    };
    const res = await gw.api('/v1/messages', {
      method: 'POST',
      json: { conversationId: session.conversationId, text: said(tag) },
    });
    expect(res.status).toBeLessThan(300);
  },
};

async function stored(tag: string): Promise<Message> {
  return eventually(async () => {
    const convs = (await (await gw.api('/v1/conversations?take=200')).json()) as { items: Conversation[] };
    for (const c of convs.items) {
      const msgs = (await (await gw.api(`/v1/conversations/${c.id}/messages?take=200`)).json()) as {
        items: Message[];
      };
      const found = msgs.items.find((m) => m.type === 'user' && m.text.startsWith(`${tag}:`));
      if (found) return found;
    }
    return undefined;
  });
}

describe('PII_REDACT=card,email', () => {
  it.each(Object.keys(channels))(
    '%s: the bot, the webhook receiver and the logs never see the card or the email',
    async (name) => {
      await channels[name]!(name);
      const call = await eventually(() => bot.calls.find((c) => c.text.startsWith(`${name}:`)));
      expect(call.text).toBe(masked(name));
      for (const h of call.history) expect(h).not.toContain(CARD);
      // The bot's echo and the customer's message both reach the receiver, masked.
      await eventually(() =>
        receiver.accepted.find(
          (d) => d.event.type === 'message.created' && d.raw.includes(`re: ${masked(name)}`),
        ),
      );
      const delivered = receiver.accepted.filter((d) => d.raw.includes(`${name}:`));
      expect(delivered.length).toBeGreaterThanOrEqual(2);
      for (const d of receiver.accepted) {
        expect(d.raw).not.toContain(CARD);
        expect(d.raw).not.toContain(EMAIL);
      }
      for (const line of gw.logs.lines) {
        const text = JSON.stringify(line);
        expect(text).not.toContain(CARD);
        expect(text).not.toContain(EMAIL);
      }
      // Agents still read what the customer wrote.
      expect((await stored(name)).text).toBe(said(name));
    },
  );

  it("masks what came in the history too: the bot's request holds no earlier card", async () => {
    const client = await ChatClient.ready(gw.url, { token: visitorToken({ sub: 'pii-history' }) });
    chats.push(client);
    client.send({ type: 'message', clientMessageId: 'h1', text: said('first') });
    await eventually(() => bot.calls.find((c) => c.text.startsWith('first:')));
    client.send({ type: 'message', clientMessageId: 'h2', text: 'and again' });
    const second = await eventually(() => bot.calls.find((c) => c.text === 'and again'));
    expect(second.history).toContain(masked('first'));
    expect(second.history.join('\n')).not.toContain(CARD);
  });
});

describe('PII_REDACT_STORE=true', () => {
  it('stores the masked text, with its entities recomputed for it', async () => {
    const other = await startGateway(env({ PII_REDACT_STORE: 'true' }));
    try {
      const session = (await (
        await other.api('/v1/sessions', { method: 'POST', json: { user: { name: 'Sol' } } })
      ).json()) as { conversationId: string };
      const text = `call +1 415 555 2671 about ${CARD} or ${EMAIL}`;
      const res = await other.api('/v1/messages', {
        method: 'POST',
        json: { conversationId: session.conversationId, text },
      });
      expect(res.status).toBeLessThan(300);
      const msgs = (await (
        await other.api(`/v1/conversations/${session.conversationId}/messages`)
      ).json()) as {
        items: Message[];
      };
      const m = msgs.items.find((x) => x.type === 'user')!;
      expect(m.text).toBe('call +1 415 555 2671 about [card] or [email]');
      // The phone is not listed, so it is kept, and its span is where it is in the masked text.
      const spans = m.entities.map((e) => [e.type, m.text.slice(e.start, e.end), e.redacted ?? false]);
      expect(spans).toEqual([
        ['phone', '+1 415 555 2671', false],
        ['card', '[card]', true],
        ['email', '[email]', true],
      ]);
    } finally {
      await other.stop();
    }
  });

  it('refuses PII_REDACT_STORE without PII_REDACT, and an unknown entity type', async () => {
    await expect(startGateway({ PII_REDACT_STORE: 'true' })).rejects.toThrow(/PII_REDACT_STORE/);
    await expect(startGateway({ PII_REDACT: 'email,ssn' })).rejects.toThrow(/ssn/);
  });
});

describe('redactText', () => {
  it('moves the entities after a mask with the text', () => {
    const text = `a ${EMAIL} b ${CARD} c`;
    const r = redactText(text, new Set(['email']));
    expect(r.text).toBe(`a [email] b ${CARD} c`);
    expect(r.entities.map((e) => r.text.slice(e.start, e.end))).toEqual(['[email]', CARD]);
  });
});
