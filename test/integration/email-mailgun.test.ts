/**
 * The Mailgun inbound route (`POST /webhooks/email/mailgun`) end to end: posts signed at run time with
 * Mailgun's documented scheme, answers received on a loopback SMTP sink.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Conversation, Message } from '../../src/core/index.js';
import { SmtpSink } from '../fakes/smtp-sink.js';
import { eventually } from '../helpers/eventually.js';
import { API_KEY, startGateway, type TestGateway } from '../helpers/gateway.js';

const KEY = 'test-webhook-signing-key-0123456789';
const MAX_BYTES = 64 * 1024;
const fixture = JSON.parse(
  readFileSync(new URL('../fixtures/mailgun-route-forward-parsed.json', import.meta.url), 'utf8'),
) as {
  form_fields: Record<string, string>;
};

let sink: SmtpSink;
let gw: TestGateway;
let seq = 0;

beforeAll(async () => {
  sink = await SmtpSink.start();
  gw = await startGateway({
    EMAIL_FROM: 'Example Support <support@help.example.com>',
    SMTP_URL: sink.url,
    MAILGUN_SIGNING_KEY: KEY,
    EMAIL_MAX_BYTES: String(MAX_BYTES),
    EMAIL_BOUNCE_SECRET: 'test-bounce-secret-0123456789abcdef',
  });
});

afterAll(async () => {
  await gw?.stop();
  await sink?.stop();
});

/** Signature fields per Mailgun's docs: hex HMAC-SHA256(key, timestamp + token). */
function signed(timestamp = Math.floor(Date.now() / 1000), key = KEY): Record<string, string> {
  const token = randomBytes(25).toString('hex');
  const ts = String(timestamp);
  return {
    timestamp: ts,
    token,
    signature: createHmac('sha256', key)
      .update(ts + token)
      .digest('hex'),
  };
}

/** Mailgun's results as it prepends them, on top of its own `Received` (then the mail's own headers). */
interface Checks {
  spf?: string;
  dkim?: string;
  /** Headers that came with the mail, below Mailgun's `Received`. */
  mail?: Array<[string, string]>;
}

function mailgunHeaders(
  messageId: string,
  { spf = 'Pass', dkim = 'Pass', mail = [] }: Checks,
  extra: Array<[string, string]> = [],
): Array<[string, string]> {
  return [
    ...(dkim ? [['X-Mailgun-Dkim-Check-Result', dkim] as [string, string]] : []),
    ...(spf ? [['X-Mailgun-Spf', spf] as [string, string]] : []),
    ['X-Mailgun-Incoming', 'Yes'],
    ['Received', 'from mail.example.org (mail.example.org [192.0.2.10]) by mxa.mailgun.org with ESMTP'],
    ...mail,
    ['Dkim-Signature', 'v=1; a=rsa-sha256; c=relaxed/relaxed; d=example.org; s=sel1; h=from:subject; b=x'],
    ['Message-Id', messageId],
    ['Subject', 'Your order status'],
    ...extra,
  ];
}

/** The fixture's fields with a fresh Message-ID (and no thread), Mailgun's checks, plus overrides. */
function fields(
  overrides: Record<string, string> = {},
  checks: Checks = {},
  extra: Array<[string, string]> = [],
): {
  fields: Record<string, string>;
  messageId: string;
} {
  seq += 1;
  const messageId = `<mg-${seq}-${Date.now()}@mail.example.org>`;
  const headers = mailgunHeaders(messageId, checks, extra);
  return {
    messageId,
    fields: { ...fixture.form_fields, 'message-headers': JSON.stringify(headers), ...signed(), ...overrides },
  };
}

function post(body: URLSearchParams | FormData | string, contentType?: string): Promise<Response> {
  return fetch(`${gw.url}/webhooks/email/mailgun`, {
    method: 'POST',
    body,
    ...(contentType ? { headers: { 'content-type': contentType } } : {}),
  });
}

async function emailMessageCount(): Promise<number> {
  const convs = (await (await gw.api('/v1/conversations?channel=email&take=200')).json()) as {
    items: Array<{ id: string }>;
  };
  let n = 0;
  for (const c of convs.items) {
    n += (
      (await (await gw.api(`/v1/conversations/${c.id}/messages?take=200`)).json()) as { items: unknown[] }
    ).items.length;
  }
  return n;
}

async function storedInbound(messageId: string): Promise<Message> {
  return (await storedWhere(messageId)).message;
}

async function storedWhere(messageId: string): Promise<{ conversationId: string; message: Message }> {
  return eventually(async () => {
    const convs = (await (await gw.api('/v1/conversations?channel=email&take=200')).json()) as {
      items: Array<{ id: string }>;
    };
    for (const c of convs.items) {
      const msgs = (await (await gw.api(`/v1/conversations/${c.id}/messages?take=200`)).json()) as {
        items: Message[];
      };
      const found = msgs.items.find((m) => m.externalId === messageId);
      if (found) return { conversationId: c.id, message: found };
    }
    return null;
  }, 10_000);
}

function refusals(reason: string): number {
  return gw.logs.lines.filter((l) => l.reason === reason && l.level === 40).length;
}

describe('Mailgun inbound route', () => {
  it('accepts a signed post, strips the quote and answers by SMTP; the same post again is a replay', async () => {
    const { fields: f, messageId } = fields();
    const body = new URLSearchParams(f);
    const res = await post(body);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: 'accepted' });
    const answer = await sink.waitFor((m) => m.header('in-reply-to') === messageId, 10_000);
    expect(answer.envelope.rcptTo).toEqual(['customer@example.org']);
    expect(answer.header('subject')).toBe('Re: [Ticket #1042] Your order status');
    expect(answer.parsed.text?.trim()).toBe('You said: Thanks, that worked!');

    const count = await emailMessageCount();
    const replay = await post(new URLSearchParams(f));
    expect(replay.status).toBe(403);
    expect(refusals('replayed_token')).toBe(1);
    expect(await emailMessageCount()).toBe(count);
  });

  it('refuses a bad signature, a stale timestamp and a missing signature with 403, storing nothing', async () => {
    const count = await emailMessageCount();
    const bad = fields(signed(Math.floor(Date.now() / 1000), 'some-other-signing-key-000'));
    expect((await post(new URLSearchParams(bad.fields))).status).toBe(403);
    const stale = fields(signed(Math.floor(Date.now() / 1000) - 600));
    expect((await post(new URLSearchParams(stale.fields))).status).toBe(403);
    const { signature: _s, ...unsigned } = fields().fields;
    expect((await post(new URLSearchParams(unsigned))).status).toBe(403);
    expect(await emailMessageCount()).toBe(count);
    expect([refusals('bad_signature'), refusals('stale_timestamp'), refusals('missing_signature')]).toEqual([
      1, 1, 1,
    ]);
    const metrics = await (await fetch(`${gw.url}/metrics`)).text();
    expect(metrics).toMatch(
      /switchboard_requests_rejected_total\{channel="email",reason="bad_signature"\} 1/,
    );
    // The signing key never reaches the logs.
    expect(gw.logs.text()).not.toContain(KEY);
  });

  it('takes multipart posts with attachments, downloadable through the API', async () => {
    const { fields: f, messageId } = fields({ 'attachment-count': '1' });
    const form = new FormData();
    for (const [k, v] of Object.entries(f)) form.append(k, v);
    const bytes = Buffer.from('%PDF-1.4 fake pdf bytes');
    form.append('attachment-1', new Blob([bytes], { type: 'application/pdf' }), 'invoice.pdf');
    expect((await post(form)).status).toBe(200);
    const stored = await storedInbound(messageId);
    expect(stored.attachments).toEqual([
      expect.objectContaining({ name: 'invoice.pdf', contentType: 'application/pdf', size: bytes.length }),
    ]);
    const path = new URL(stored.attachments[0]!.url).pathname;
    const download = await fetch(`${gw.url}${path}`, { headers: { authorization: `Bearer ${API_KEY}` } });
    expect(Buffer.from(await download.arrayBuffer())).toEqual(bytes);
    expect((await fetch(`${gw.url}${path}`)).status).toBe(401);
  });

  it('parses the raw MIME of a route ending in "mime" (body-mime)', async () => {
    seq += 1;
    const messageId = `<mime-${seq}-${Date.now()}@mail.example.org>`;
    const mime = `X-Mailgun-Spf: Pass\r\nReceived: from mail.example.org by mxa.mailgun.org with ESMTP\r\nFrom: Raw Sender <raw@example.org>\r\nTo: support@help.example.com\r\nSubject: Raw\r\nMessage-ID: ${messageId}\r\n\r\nFrom the raw route\r\n`;
    const res = await post(
      new URLSearchParams({
        recipient: 'support@help.example.com',
        sender: 'raw@example.org',
        'body-mime': mime,
        ...signed(),
      }),
    );
    expect(res.status).toBe(200);
    const answer = await sink.waitFor((m) => m.header('in-reply-to') === messageId, 10_000);
    expect(answer.parsed.text?.trim()).toBe('You said: From the raw route');
  });

  it('answers 406 (no retry) for posts that can never succeed', async () => {
    expect((await post(JSON.stringify({ hello: 1 }), 'application/json')).status).toBe(406);
    const { from: _f, ...noFrom } = fields().fields;
    expect((await post(new URLSearchParams(noFrom))).status).toBe(406);
    expect(refusals('no_from')).toBe(1);
    const big = fields({ 'body-plain': 'x'.repeat(MAX_BYTES + 1) });
    expect((await post(new URLSearchParams(big.fields))).status).toBe(406);
    expect(refusals('too_large')).toBe(1);
    // A bounce address of ours whose token does not verify: nothing to deliver it to.
    const forged = fields({ recipient: `bounces+msg_${'0'.repeat(26)}-${'a'.repeat(16)}@help.example.com` });
    expect((await post(new URLSearchParams(forged.fields))).status).toBe(406);
    expect(refusals('bad_bounce_token')).toBe(1);
  });

  it("answers 503 while it cannot accept, and takes Mailgun's retry of the same post", async () => {
    const { fields: f, messageId } = fields();
    gw.gateway.deps.lifecycle.draining = true;
    const first = await post(new URLSearchParams(f));
    gw.gateway.deps.lifecycle.draining = false;
    expect(first.status).toBe(503);
    expect((await post(new URLSearchParams(f))).status).toBe(200);
    await sink.waitFor((m) => m.header('in-reply-to') === messageId, 10_000);
  });

  it("judges the sender by Mailgun's own results: failing mail joins no thread, is not answered, and is flagged", async () => {
    const genuine = fields();
    expect((await post(new URLSearchParams(genuine.fields))).status).toBe(200);
    const answer = await sink.waitFor((m) => m.header('in-reply-to') === genuine.messageId, 10_000);
    const ours = answer.header('message-id')!;
    const thread = (await storedWhere(genuine.messageId)).conversationId;
    expect((await storedInbound(genuine.messageId)).meta.auth).toMatchObject({
      verdict: 'pass',
      via: 'mailgun',
      aligned: 'dkim',
    });

    const inThread: Array<[string, string]> = [
      ['In-Reply-To', ours],
      ['References', `${genuine.messageId} ${ours}`],
    ];
    // SPF and DKIM both fail at Mailgun.
    const failing = fields({}, { spf: 'Fail', dkim: 'Fail' }, inThread);
    // SPF fails; the "pass" below Mailgun's Received came with the mail, anyone can write it.
    const written = fields(
      {},
      { spf: 'SoftFail', dkim: '', mail: [['X-Mailgun-Dkim-Check-Result', 'Pass']] },
      inThread,
    );
    // Mailgun's checks pass, but for another domain than the From one (not aligned).
    const unaligned = fields({ sender: 'bounce@mailer.evil.test' }, { spf: 'Pass', dkim: 'Pass' }, [
      ...inThread,
      ['Dkim-Signature', 'v=1; a=rsa-sha256; d=evil.test; s=s1; h=from; b=x'],
    ]);
    const flagged: string[] = [];
    for (const f of [failing, written, unaligned]) {
      const res = await post(new URLSearchParams(f.fields));
      expect(res.status).toBe(200);
      const { conversationId, message } = await storedWhere(f.messageId);
      expect(conversationId).not.toBe(thread);
      expect(message.meta.auth).toMatchObject({ verdict: 'fail', via: 'mailgun' });
      const conv = (await (await gw.api(`/v1/conversations/${conversationId}`)).json()) as Conversation;
      expect(conv.channelRef).toMatch(/^unauth:/);
      expect(conv.meta.flagged).toBe('unauthenticated_sender');
      flagged.push(conversationId);
    }
    expect(new Set(flagged).size).toBe(3);

    // Barrier: a genuine reply in the thread is answered, and none of the failing ones is.
    const reply = fields({}, {}, inThread);
    expect((await post(new URLSearchParams(reply.fields))).status).toBe(200);
    await sink.waitFor((m) => m.header('in-reply-to') === reply.messageId, 10_000);
    expect((await storedWhere(reply.messageId)).conversationId).toBe(thread);
    for (const f of [failing, written, unaligned]) {
      expect(sink.messages.filter((m) => m.header('in-reply-to') === f.messageId)).toHaveLength(0);
    }
  });
  it("links the sender's contact only on Mailgun's own DKIM pass for the From domain", async () => {
    const from = 'Dana Mailgun <dana@example.org>';
    const genuine = fields({ from, sender: 'dana@example.org' });
    expect((await post(new URLSearchParams(genuine.fields))).status).toBe(200);
    await storedWhere(genuine.messageId);
    const contacts = async () =>
      (
        (await (await gw.api('/v1/contacts?identity=email:dana%40example.org')).json()) as {
          items: Array<{ id: string; identities: unknown[] }>;
        }
      ).items;
    expect((await contacts()).map((c) => c.identities)).toEqual([
      [{ channel: 'email', address: 'dana@example.org', verified: true, source: 'mailgun_dkim' }],
    ]);
    // A pass written below Mailgun's Received, by anyone: not Mailgun's word, so a contact of its own.
    const written = fields(
      { from, sender: 'dana@example.org' },
      { spf: 'SoftFail', dkim: '', mail: [['X-Mailgun-Dkim-Check-Result', 'Pass']] },
    );
    expect((await post(new URLSearchParams(written.fields))).status).toBe(200);
    await storedWhere(written.messageId);
    const both = await contacts();
    expect(both).toHaveLength(2);
    expect(both.flatMap((c) => c.identities)).toContainEqual({
      channel: 'email',
      address: 'dana@example.org',
      verified: false,
      source: 'none',
    });
  });
});
