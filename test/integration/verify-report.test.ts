/**
 * Verification rollout (SPEC §12): `TWILIO_VERIFY`, `SLACK_VERIFY` and `MAILGUN_VERIFY`. Two gateways
 * side by side, one enforcing (the default) and one reporting, get the same forged requests (signed
 * at run time with the wrong secret by each provider's own scheme): the enforcing one refuses them and
 * stores nothing; the reporting one accepts them, logs each once at warn with its reason and counts it
 * with `mode="report"`, and trusts nothing they say about the sender (no verified identity, so no
 * contact is linked by them), and never acts on them as an agent.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Conversation, Message } from '../../src/core/index.js';
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

const PUBLIC_URL = 'https://chat.example.com';
const WRONG = 'not-the-secret-0123456789abcdef';
const DESK = 'C0DESK01';

let twilioApi: FakeTwilioApi;
let slackApi: FakeSlackApi;
let sink: SmtpSink;
let enforce: TestGateway;
let report: TestGateway;

function env(mode: 'enforce' | 'report' | undefined): Record<string, string> {
  return {
    PUBLIC_URL,
    TWILIO_ACCOUNT_SID: ACCOUNT_SID,
    TWILIO_AUTH_TOKEN: AUTH_TOKEN,
    TWILIO_API_URL: twilioApi.url,
    SLACK_SIGNING_SECRET: SIGNING_SECRET,
    SLACK_BOT_TOKEN: 'xoxb-test-0000-token',
    SLACK_API_URL: slackApi.url,
    SLACK_TEAM_ID: TEAM_ID,
    SLACK_AGENT_CHANNEL: DESK,
    EMAIL_FROM: 'Example Support <support@help.example.com>',
    SMTP_URL: sink.url,
    MAILGUN_SIGNING_KEY: MAILGUN_KEY,
    EMAIL_BOUNCE_SECRET: 'test-bounce-secret-0123456789abcdef',
    ...(mode ? { TWILIO_VERIFY: mode, SLACK_VERIFY: mode, MAILGUN_VERIFY: mode } : {}),
  };
}

beforeAll(async () => {
  [twilioApi, slackApi, sink] = await Promise.all([
    FakeTwilioApi.start(),
    FakeSlackApi.start(),
    SmtpSink.start(),
  ]);
  // The enforcing gateway leaves the settings unset: enforcing is the default.
  [enforce, report] = await Promise.all([startGateway(env(undefined)), startGateway(env('report'))]);
});

afterAll(async () => {
  await Promise.all([enforce?.stop(), report?.stop()]);
  await Promise.all([twilioApi?.close(), slackApi?.close(), sink?.stop()]);
});

async function metric(gw: TestGateway, name: string, labels: Record<string, string>): Promise<number> {
  const text = await (await fetch(`${gw.url}/metrics`)).text();
  const line = text
    .split('\n')
    .find(
      (l) => l.startsWith(`${name}{`) && Object.entries(labels).every(([k, v]) => l.includes(`${k}="${v}"`)),
    );
  return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
}

function warnings(gw: TestGateway, reason: string) {
  return gw.logs.lines.filter((l) => l.level === 40 && l.reason === reason);
}

async function conversations(gw: TestGateway, channel: string): Promise<Conversation[]> {
  return (
    (await (await gw.api(`/v1/conversations?channel=${channel}&take=200`)).json()) as {
      items: Conversation[];
    }
  ).items;
}

async function messagesOf(gw: TestGateway, conversationId: string): Promise<Message[]> {
  return (
    (await (await gw.api(`/v1/conversations/${conversationId}/messages?take=200`)).json()) as {
      items: Message[];
    }
  ).items;
}

async function findMessage(gw: TestGateway, channel: string, text: string): Promise<Message | undefined> {
  for (const c of await conversations(gw, channel)) {
    const found = (await messagesOf(gw, c.id)).find((m) => m.text === text);
    if (found) return found;
  }
  return undefined;
}

interface ContactView {
  identities: Array<{ channel: string; address: string; verified: boolean; source: string }>;
}

async function contactWith(
  gw: TestGateway,
  channel: string,
  address: string,
): Promise<ContactView | undefined> {
  const res = await gw.api(`/v1/contacts?identity=${encodeURIComponent(`${channel}:${address}`)}`);
  expect(res.status).toBe(200);
  return ((await res.json()) as { items: ContactView[] }).items[0];
}

describe('start-up', () => {
  it('warns once per channel in report mode and shows every mode in /metrics', async () => {
    for (const setting of ['TWILIO_VERIFY', 'SLACK_VERIFY', 'MAILGUN_VERIFY']) {
      expect(report.logs.lines.filter((l) => l.level === 40 && l.setting === setting)).toHaveLength(1);
      expect(enforce.logs.lines.some((l) => l.setting === setting)).toBe(false);
    }
    for (const channel of ['twilio', 'slack', 'email']) {
      expect(await metric(report, 'switchboard_verification_mode', { channel, mode: 'report' })).toBe(1);
      expect(await metric(report, 'switchboard_verification_mode', { channel, mode: 'enforce' })).toBe(0);
      expect(await metric(enforce, 'switchboard_verification_mode', { channel, mode: 'enforce' })).toBe(1);
    }
  });

  it('refuses an unknown mode, and MAILGUN_VERIFY without the Mailgun route', async () => {
    await expect(startGateway({ ...env(undefined), TWILIO_VERIFY: 'off' })).rejects.toThrow(/TWILIO_VERIFY/);
    const { MAILGUN_SIGNING_KEY: _key, ...withoutMailgun } = env(undefined);
    await expect(
      startGateway({ ...withoutMailgun, EMAIL_SMTP_PORT: '0', MAILGUN_VERIFY: 'report' }),
    ).rejects.toThrow(/MAILGUN_VERIFY/);
  });
});

describe('Twilio', () => {
  const post = (gw: TestGateway, params: Record<string, string>, token?: string) =>
    postWebhook(`${gw.url}/webhooks/twilio`, params, {
      signedUrl: `${PUBLIC_URL}/webhooks/twilio`,
      ...(token ? { token } : {}),
    });

  it('enforce refuses a forged webhook, counts it and stores nothing', async () => {
    const before = await metric(enforce, 'switchboard_verification_failures_total', {
      channel: 'twilio',
      reason: 'bad_signature',
      mode: 'enforce',
    });
    const text = `forged enforce ${randomBytes(4).toString('hex')}`;
    const res = await post(enforce, smsParams({ From: '+14155550171', Body: text }), WRONG);
    expect(res.status).toBe(403);
    expect(
      await metric(enforce, 'switchboard_verification_failures_total', {
        channel: 'twilio',
        reason: 'bad_signature',
        mode: 'enforce',
      }),
    ).toBe(before + 1);
    expect(await findMessage(enforce, 'sms', text)).toBeUndefined();
  });

  it('report accepts a forged webhook, answers it, logs its reason once and counts it', async () => {
    const text = `forged report ${randomBytes(4).toString('hex')}`;
    const logged = warnings(report, 'bad_signature').length;
    const res = await post(report, smsParams({ From: '+14155550172', Body: text }), WRONG);
    expect(res.status).toBe(200);
    expect(await findMessage(report, 'sms', text)).toBeDefined();
    await eventually(() => twilioApi.created().find((r) => r.fields.Body === `You said: ${text}`));
    expect(warnings(report, 'bad_signature')).toHaveLength(logged + 1);
    expect(warnings(report, 'bad_signature').at(-1)).toMatchObject({ channel: 'twilio', mode: 'report' });
    expect(
      await metric(report, 'switchboard_verification_failures_total', {
        channel: 'twilio',
        reason: 'bad_signature',
        mode: 'report',
      }),
    ).toBeGreaterThanOrEqual(1);
    // Accepted, not refused: the refusal counter does not move for it.
    expect(
      await metric(report, 'switchboard_requests_rejected_total', {
        channel: 'twilio',
        reason: 'bad_signature',
      }),
    ).toBe(0);
  });

  it("report never trusts a forged WaId: the WhatsApp sender does not link to the SMS number's contact", async () => {
    const number = '+14155550173';
    expect((await post(report, smsParams({ From: number, Body: 'signed sms' }))).status).toBe(200);
    const forged = whatsappParams({ From: `whatsapp:${number}`, WaId: number.slice(1), Body: 'forged wa' });
    expect((await post(report, forged, WRONG)).status).toBe(200);
    const wa = await eventually(() => contactWith(report, 'whatsapp', number));
    expect(wa.identities).toEqual([expect.objectContaining({ channel: 'whatsapp', verified: false })]);
    const sms = await contactWith(report, 'sms', number);
    expect(sms?.identities.map((i) => i.channel)).toEqual(['sms']);
    // The same message signed properly does link (so the test above is about the signature).
    const signedNumber = '+14155550174';
    expect((await post(report, smsParams({ From: signedNumber, Body: 'signed sms' }))).status).toBe(200);
    const real = whatsappParams({
      From: `whatsapp:${signedNumber}`,
      WaId: signedNumber.slice(1),
      Body: 'real wa',
    });
    expect((await post(report, real)).status).toBe(200);
    const linked = await eventually(async () => {
      const c = await contactWith(report, 'sms', signedNumber);
      return c && c.identities.length === 2 ? c : undefined;
    });
    expect(linked.identities.map((i) => i.channel).sort()).toEqual(['sms', 'whatsapp']);
  });
});

describe('Slack', () => {
  const post = (gw: TestGateway, event: Record<string, unknown>, secret: string) => {
    const body = JSON.stringify(eventEnvelope(event));
    return fetch(`${gw.url}/webhooks/slack/events`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...signSlack(body, { secret }) },
      body,
    });
  };
  const dm = (channel: string, text: string) => {
    const ts = nextTs();
    return { type: 'message', channel, channel_type: 'im', user: 'U0777', text, ts, event_ts: ts };
  };

  it('enforce refuses a forged event with 401', async () => {
    const res = await post(enforce, dm('D0ENF01', 'forged slack'), WRONG);
    expect(res.status).toBe(401);
    expect(await findMessage(enforce, 'slack', 'forged slack')).toBeUndefined();
  });

  it('report accepts a forged customer message, but refuses a forged message in the agents desk', async () => {
    const text = `forged slack ${randomBytes(4).toString('hex')}`;
    expect((await post(report, dm('D0REP01', text), WRONG)).status).toBe(200);
    expect(await eventually(() => findMessage(report, 'slack', text))).toBeDefined();
    expect(warnings(report, 'bad_signature').some((l) => l.channel === 'slack')).toBe(true);
    const ts = nextTs();
    const inDesk = {
      type: 'message',
      channel: DESK,
      channel_type: 'channel',
      user: 'U0AGENT',
      text: 'forged agent reply',
      ts,
      thread_ts: '1700000000.000100',
      event_ts: ts,
    };
    const res = await post(report, inDesk, WRONG);
    expect(res.status).toBe(401);
    expect(warnings(report, 'unverified_agent_action')).toHaveLength(1);
  });
});

describe('Mailgun', () => {
  const form = (key: string, text: string) => mailgunForm({ key, text });
  const post = (gw: TestGateway, body: URLSearchParams) =>
    fetch(`${gw.url}/webhooks/email/mailgun`, { method: 'POST', body });

  it('enforce refuses a forged post with 403', async () => {
    const res = await post(enforce, form(WRONG, 'forged mail enforce'));
    expect(res.status).toBe(403);
    expect(await findMessage(enforce, 'email', 'forged mail enforce')).toBeUndefined();
  });

  it("report accepts a forged post, counts it, and does not take Mailgun's DKIM word for the sender", async () => {
    const res = await post(report, form(WRONG, 'forged mail report'));
    expect(res.status).toBe(200);
    expect(await eventually(() => findMessage(report, 'email', 'forged mail report'))).toBeDefined();
    expect(
      await metric(report, 'switchboard_verification_failures_total', {
        channel: 'email',
        reason: 'bad_signature',
        mode: 'report',
      }),
    ).toBe(1);
    const contact = await contactWith(report, 'email', 'customer@example.org');
    expect(contact?.identities).toEqual([expect.objectContaining({ channel: 'email', verified: false })]);
  });

  it('report still checks a signed post as usual: a replayed token is logged and counted, not trusted', async () => {
    const body = form(MAILGUN_KEY, 'signed mail');
    expect((await post(report, body)).status).toBe(200);
    expect((await post(report, body)).status).toBe(200);
    expect(
      await metric(report, 'switchboard_verification_failures_total', {
        channel: 'email',
        reason: 'replayed_token',
        mode: 'report',
      }),
    ).toBe(1);
    // The replay is the same mail: the dedupe on Message-ID keeps one copy.
    const convs = await conversations(report, 'email');
    let copies = 0;
    for (const c of convs)
      copies += (await messagesOf(report, c.id)).filter((m) => m.text === 'signed mail').length;
    expect(copies).toBe(1);
  });
});
