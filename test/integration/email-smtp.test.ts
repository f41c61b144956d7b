/**
 * The email channel end to end over real SMTP: mail is sent with nodemailer to the gateway's built-in
 * listener, the demo bot answers, and the answers are received by a loopback SMTP sink.
 */
import { readFileSync } from 'node:fs';
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Conversation, Message } from '../../src/core/index.js';
import { dkimSigned, FakeDns } from '../fakes/dns.js';
import { type SinkMessage, SmtpSink } from '../fakes/smtp-sink.js';
import { eventually } from '../helpers/eventually.js';
import { API_KEY, startGateway, type TestGateway } from '../helpers/gateway.js';
import { freePort } from '../helpers/redis.js';

const SUPPORT = 'support@help.example.com';
const MAX_BYTES = 64 * 1024;
const fixture = (name: string) => readFileSync(new URL(`../fixtures/${name}`, import.meta.url), 'utf8');

let sink: SmtpSink;
let gw: TestGateway;
let client: nodemailer.Transporter;
/** Connects from 127.0.0.2, an address no SPF record here permits. */
let forger: nodemailer.Transporter;
let dns: FakeDns;
/** The private half of signed.example's DKIM key (made at run time, published in `dns`). */
let signedKey: string;
let seq = 0;

beforeAll(async () => {
  sink = await SmtpSink.start();
  const port = await freePort();
  // The customers' domain lets this test's client (127.0.0.1) send for it: SPF passes, aligned.
  // signed.example permits no address at all: its mail can only pass by its DKIM signature.
  // evil.test is a forger's own domain: its SPF passes, but it is not the From domain it forges.
  dns = new FakeDns()
    .spf('example.org', 'v=spf1 ip4:127.0.0.1 -all')
    .spf('mail.example.org', 'v=spf1 ip4:127.0.0.1 -all')
    .dmarc('example.org')
    .spf('signed.example', 'v=spf1 -all')
    .dmarc('signed.example')
    .spf('evil.test', 'v=spf1 ip4:127.0.0.1 ip4:127.0.0.2 -all')
    .spf('flaky.example', 'v=spf1 ip4:127.0.0.1 -all')
    .dmarc('flaky.example');
  signedKey = dns.dkimKey('signed.example');
  gw = await startGateway(
    {
      EMAIL_FROM: `Example Support <${SUPPORT}>`,
      SMTP_URL: sink.url,
      EMAIL_SMTP_PORT: String(port),
      EMAIL_SMTP_HOST: '127.0.0.1',
      EMAIL_MAX_BYTES: String(MAX_BYTES),
      EMAIL_BOUNCE_SECRET: 'test-bounce-secret-0123456789abcdef',
    },
    {},
    { email: { resolver: dns.resolver } },
  );
  client = nodemailer.createTransport({ host: '127.0.0.1', port, ignoreTLS: true, name: 'mail.example.org' });
  forger = nodemailer.createTransport({
    host: '127.0.0.1',
    port,
    ignoreTLS: true,
    name: 'mail.example.org',
    localAddress: '127.0.0.2',
  });
});

afterAll(async () => {
  client?.close();
  forger?.close();
  await gw?.stop();
  await sink?.stop();
});

/** A unique Message-ID for a customer mail. */
function mid(label: string): string {
  seq += 1;
  return `<${label}-${seq}-${Date.now()}@mail.example.org>`;
}

function answersTo(messageId: string): SinkMessage[] {
  return sink.messages.filter((m) => m.header('in-reply-to') === messageId);
}

async function answerTo(messageId: string): Promise<SinkMessage> {
  return sink.waitFor((m) => m.header('in-reply-to') === messageId, 10_000);
}

async function json<T>(path: string): Promise<T> {
  const res = await gw.api(path);
  expect(res.status).toBe(200);
  return (await res.json()) as T;
}

/** The stored message whose `meta.email.messageId` (inbound) or `externalId` (ours) is `messageId`. */
async function stored(
  messageId: string,
  on: TestGateway = gw,
): Promise<{ conversationId: string; message: Message }> {
  const get = async <T>(path: string): Promise<T> => (await (await on.api(path)).json()) as T;
  return eventually(async () => {
    const convs = await get<{ items: Array<{ id: string }> }>('/v1/conversations?channel=email&take=200');
    for (const c of convs.items) {
      const msgs = await get<{ items: Message[] }>(`/v1/conversations/${c.id}/messages?take=200`);
      const found = msgs.items.find(
        (m) =>
          m.externalId === messageId ||
          (m.meta.email as { messageId?: string } | undefined)?.messageId === messageId,
      );
      if (found) return { conversationId: c.id, message: found };
    }
    return null;
  }, 10_000);
}

/** Proves the listener still accepts and answers mail after bad input. */
async function stillServing(): Promise<void> {
  const id = mid('alive');
  await client.sendMail({
    from: 'alive@example.org',
    to: SUPPORT,
    subject: 'ping',
    text: 'still there?',
    messageId: id,
  });
  expect((await answerTo(id)).parsed.text?.trim()).toBe('You said: still there?');
}

describe('email over SMTP', () => {
  it('keeps a first message and two rounds of replies in one thread, headers right at each step', async () => {
    const customer = { name: 'Customer Name', address: 'customer@example.org' };
    const c1 = mid('c1');
    const sent = await client.sendMail({
      from: customer,
      to: SUPPORT,
      subject: 'Order 1042',
      text: 'Where is my order?',
      messageId: c1,
    });
    expect(sent.response).toMatch(/^250 /);

    const b1 = await answerTo(c1);
    const b1Id = b1.header('message-id')!;
    expect(b1.envelope.rcptTo).toEqual([customer.address]);
    expect(b1.header('subject')).toBe('Re: Order 1042');
    expect(b1Id).toMatch(/^<msg_[0-9A-Z]{26}@help\.example\.com>$/);
    expect(b1.header('references')).toBe(c1);
    expect(b1.header('auto-submitted')).toBe('auto-replied');
    expect(b1.header('x-auto-response-suppress')).toBe('All');
    expect(b1.parsed.from?.value[0]?.address).toBe(SUPPORT);
    expect(b1.parsed.text?.trim()).toBe('You said: Where is my order?');
    expect(b1.parsed.html).toContain('You said: Where is my order?');
    const replyTo = b1.parsed.replyTo?.value[0]?.address ?? '';
    expect(replyTo).toMatch(/^support\+[a-z2-7]{16}@help\.example\.com$/);

    // Round 1: a reply quoting our answer, threaded by In-Reply-To/References; the quote is stripped.
    const c2 = mid('c2');
    await client.sendMail({
      from: customer,
      to: replyTo,
      subject: 'Re: Order 1042',
      text: `Thanks! Can I change the address?\n\nOn Mon, Jan 5, 2026 at 10:00 AM Example Support <${SUPPORT}> wrote:\n> You said: Where is my order?\n`,
      messageId: c2,
      inReplyTo: b1Id,
      references: [c1, b1Id],
    });
    const b2 = await answerTo(c2);
    const b2Id = b2.header('message-id')!;
    expect(b2.header('subject')).toBe('Re: Order 1042');
    expect(b2Id).not.toBe(b1Id);
    expect(b2.header('references')).toBe(`${c1} ${b1Id} ${c2}`);
    expect(b2.header('auto-submitted')).toBe('auto-replied');
    expect(b2.parsed.text?.trim()).toBe('You said: Thanks! Can I change the address?');

    // Round 2: a client that drops In-Reply-To/References still lands in the thread via the Reply-To token.
    const c3 = mid('c3');
    await client.sendMail({
      from: customer,
      to: replyTo,
      subject: 'Re: Order 1042',
      text: 'One more thing.',
      messageId: c3,
    });
    const b3 = await answerTo(c3);
    expect(b3.header('subject')).toBe('Re: Order 1042');
    // The whole chain, root first (RFC 5322 §3.6.4), though c3 itself carried no References.
    expect(b3.header('references')).toBe(`${c1} ${b1Id} ${c2} ${b2Id} ${c3}`);
    expect(b3.header('auto-submitted')).toBe('auto-replied');

    const first = await stored(c1);
    const third = await stored(c3);
    expect(third.conversationId).toBe(first.conversationId);
    const conv = await json<{ channelRef: string; meta: { email: { subject: string } } }>(
      `/v1/conversations/${first.conversationId}`,
    );
    expect(conv.channelRef).toBe(c1);
    const msgs = await json<{ items: Message[] }>(`/v1/conversations/${first.conversationId}/messages`);
    expect(msgs.items.map((m) => `${m.direction}:${m.text}`)).toEqual([
      'inbound:Where is my order?',
      'outbound:You said: Where is my order?',
      'inbound:Thanks! Can I change the address?',
      'outbound:You said: Thanks! Can I change the address?',
      'inbound:One more thing.',
      'outbound:You said: One more thing.',
    ]);
    // The full original, quote included, stays available through the API.
    expect((msgs.items[2]!.meta.email as { fullText: string }).fullText).toContain(
      '> You said: Where is my order?',
    );
    expect(msgs.items[1]!.externalId).toBe(b1Id);
    expect(msgs.items[1]!.delivery?.status).toBe('sent');

    // A new subject from the same sender is a new conversation.
    const c4 = mid('c4');
    await client.sendMail({
      from: customer,
      to: SUPPORT,
      subject: 'Another topic',
      text: 'Hello again',
      messageId: c4,
    });
    await answerTo(c4);
    expect((await stored(c4)).conversationId).not.toBe(first.conversationId);
  });

  it('keeps the root and the newest ids (20 in all) in References of a long thread joined by its reply token', async () => {
    const customer = 'chatty@example.org';
    const c1 = mid('long');
    await client.sendMail({ from: customer, to: SUPPORT, subject: 'Long', text: 'round 0', messageId: c1 });
    const b1 = await answerTo(c1);
    const replyTo = b1.parsed.replyTo?.value[0]?.address ?? '';
    const chain = [c1, b1.header('message-id')!];
    const capped = (ids: string[]) => (ids.length > 20 ? [ids[0]!, ...ids.slice(-19)] : ids);
    for (let round = 1; round <= 11; round++) {
      // A client that keeps no References: only the reply token ties the mail to its thread.
      const c = mid('long');
      await client.sendMail({
        from: customer,
        to: replyTo,
        subject: 'Re: Long',
        text: `round ${round}`,
        messageId: c,
      });
      const b = await answerTo(c);
      expect(b.header('references')).toBe(capped([...chain, c]).join(' '));
      chain.push(c, b.header('message-id')!);
    }
    expect(chain.length).toBeGreaterThan(20);
    expect((await stored(chain.at(-2)!)).conversationId).toBe((await stored(c1)).conversationId);
  });

  it('answers HTML-only mail with its readable text', async () => {
    const id = mid('html');
    await client.sendMail({
      from: 'html@example.org',
      to: SUPPORT,
      subject: 'HTML',
      html: '<p>Hello <b>there</b></p><script>alert(1)</script>',
      messageId: id,
    });
    expect((await answerTo(id)).parsed.text?.trim()).toBe('You said: Hello there');
  });

  it('keeps attachments, downloadable through the API with the key only', async () => {
    const id = mid('att');
    const bytes = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 1, 2, 3, 255]);
    await client.sendMail({
      from: 'files@example.org',
      to: SUPPORT,
      subject: 'Receipt',
      text: 'See attached',
      messageId: id,
      attachments: [{ filename: 'receipt.png', content: bytes, contentType: 'image/png' }],
    });
    const { message } = await stored(id);
    expect(message.attachments).toHaveLength(1);
    const att = message.attachments[0]!;
    expect(att).toMatchObject({ name: 'receipt.png', contentType: 'image/png', size: bytes.length });
    const path = new URL(att.url).pathname;
    expect(path).toMatch(/^\/v1\/attachments\/att_[0-9a-f]{32}$/);

    const ok = await fetch(`${gw.url}${path}`, { headers: { authorization: `Bearer ${API_KEY}` } });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('content-type')).toBe('image/png');
    expect(ok.headers.get('content-disposition')).toMatch(/^attachment; filename="receipt.png"/);
    expect(Buffer.from(await ok.arrayBuffer())).toEqual(bytes);
    expect((await fetch(`${gw.url}${path}`)).status).toBe(401);
    expect(
      (await fetch(`${gw.url}${path}`, { headers: { authorization: 'Bearer wrong-key-0123456789abc' } }))
        .status,
    ).toBe(401);
    const missing = await fetch(`${gw.url}/v1/attachments/att_${'0'.repeat(32)}`, {
      headers: { authorization: `Bearer ${API_KEY}` },
    });
    expect(missing.status).toBe(404);
  });

  it('stores an out-of-office and a bounce without answering; the bounce marks our message failed', async () => {
    const customer = 'traveller@example.org';
    const c1 = mid('ooo');
    await client.sendMail({ from: customer, to: SUPPORT, subject: 'Trip', text: 'Question', messageId: c1 });
    const answer = await answerTo(c1);
    const ours = answer.header('message-id')!;
    const before = sink.messages.length;

    const ooo = fixture('email-constructed-auto-reply-rfc3834.eml')
      .replaceAll('<bot-20260105T090000Z-1042@help.example.com>', ours)
      .replace('<auto-0001@mail.example.org>', mid('auto'))
      .replace('customer@example.org', customer)
      .replace(/\r?\n/g, '\r\n');
    await client.sendMail({ envelope: { from: '', to: SUPPORT }, raw: ooo });
    const autoId = /^Message-ID: (<[^>]+>)/m.exec(ooo)![1]!;
    const auto = await stored(autoId);
    expect(auto.message.type).toBe('activity');
    expect((auto.message.meta.email as { automated: string }).automated).toBe('auto-submitted');
    expect(auto.conversationId).toBe((await stored(c1)).conversationId);

    const dsn = fixture('email-constructed-bounce-dsn.eml')
      .replace('<bot-20260105T090007Z-1043@help.example.com>', ours)
      .replace('<dsn-0001@mx.example.net>', mid('dsn'))
      .replace(/\r?\n/g, '\r\n');
    // The DSN comes back to the answer's own bounce (VERP) address, its envelope sender.
    expect(answer.envelope.mailFrom).toMatch(/^bounces\+msg_[0-9a-z]{26}-[a-z2-7]{16}@help\.example\.com$/);
    await client.sendMail({ envelope: { from: '', to: answer.envelope.mailFrom }, raw: dsn });
    const bounced = await eventually(async () => {
      const m = (await stored(ours)).message;
      return m.delivery?.status === 'failed' ? m : null;
    });
    expect(bounced.delivery?.error).toEqual({ code: '5.1.1', message: '550 5.1.1 User unknown' });

    // Barrier: a person's mail in the same thread is answered, and it is the only new answer.
    const c2 = mid('after');
    await client.sendMail({
      from: customer,
      to: SUPPORT,
      subject: 'Re: Trip',
      text: 'Back home',
      messageId: c2,
      inReplyTo: ours,
    });
    await answerTo(c2);
    expect(sink.messages.length).toBe(before + 1);
  });

  it('answers a resent message (same Message-ID) once', async () => {
    const id = mid('resent');
    const mail = {
      from: 'twice@example.org',
      to: SUPPORT,
      subject: 'Dup',
      text: 'Only once please',
      messageId: id,
    };
    expect((await client.sendMail(mail)).response).toMatch(/^250 .*queued/);
    await answerTo(id);
    expect((await client.sendMail(mail)).response).toMatch(/^250 .*already received/);
    const barrier = mid('barrier');
    await client.sendMail({ ...mail, text: 'barrier', messageId: barrier, inReplyTo: id });
    await answerTo(barrier);
    expect(answersTo(id)).toHaveLength(1);
  });

  it('cannot be made to inject headers through an encoded subject', async () => {
    const id = mid('inject');
    const subject = `=?utf-8?B?${Buffer.from('Hi\r\nBcc: victim@example.net').toString('base64')}?=`;
    const raw = `From: eve@example.org\r\nTo: ${SUPPORT}\r\nSubject: ${subject}\r\nMessage-ID: ${id}\r\n\r\nhello\r\n`;
    await client.sendMail({ envelope: { from: 'eve@example.org', to: SUPPORT }, raw });
    const answer = await answerTo(id);
    expect(answer.envelope.rcptTo).toEqual(['eve@example.org']);
    expect(answer.parsed.bcc).toBeUndefined();
    expect(answer.raw.toString().slice(0, answer.raw.indexOf('\r\n\r\n'))).not.toMatch(/^Bcc:/im);
    expect(answer.header('subject')).toBe('Re: Hi Bcc: victim@example.net');
  });

  it('refuses mail for another domain with 550 and keeps serving', async () => {
    const err = await client
      .sendMail({ from: 'x@example.org', to: 'someone@other.example', subject: 's', text: 't' })
      .catch((e: { responseCode?: number; response?: string }) => e);
    expect(err).toMatchObject({ responseCode: 550 });
    expect((err as { response: string }).response).toMatch(/^550 5\.1\.1 /);
    expect(gw.logs.lines.filter((l) => l.reason === 'unknown_recipient')).toHaveLength(1);
    await stillServing();
  });

  it('refuses oversized mail with 552 and keeps serving', async () => {
    const err = await client
      .sendMail({
        from: 'big@example.org',
        to: SUPPORT,
        subject: 'big',
        text: 'x'.repeat(MAX_BYTES * 2),
        messageId: mid('big'),
      })
      .catch((e: { responseCode?: number }) => e);
    expect(err).toMatchObject({ responseCode: 552 });
    await stillServing();
  });

  it('refuses malformed MIME and mail without a From with 554, stores nothing, keeps serving', async () => {
    const before = (await json<{ items: unknown[] }>('/v1/conversations?channel=email&take=200')).items
      .length;
    const garbage = await client
      .sendMail({
        envelope: { from: 'x@example.org', to: SUPPORT },
        raw: '\u0000\u0001\u0002 this is not a message\r\n',
      })
      .catch((e: { responseCode?: number; response?: string }) => e);
    expect(garbage).toMatchObject({ responseCode: 554 });
    expect((garbage as { response: string }).response).toMatch(/^554 5\.6\.0 /);
    const noFrom = await client
      .sendMail({
        envelope: { from: 'x@example.org', to: SUPPORT },
        raw: `To: ${SUPPORT}\r\nSubject: who\r\n\r\nanonymous\r\n`,
      })
      .catch((e: { responseCode?: number }) => e);
    expect(noFrom).toMatchObject({ responseCode: 554 });
    expect((await json<{ items: unknown[] }>('/v1/conversations?channel=email&take=200')).items.length).toBe(
      before,
    );
    expect(gw.logs.lines.filter((l) => l.reason === 'no_from' && l.level === 40)).toHaveLength(2);
    await stillServing();
  });

  it('answers 451 while the gateway cannot accept, so the sender retries', async () => {
    const id = mid('later');
    const mail = {
      from: 'patient@example.org',
      to: SUPPORT,
      subject: 'later',
      text: 'retry me',
      messageId: id,
    };
    gw.gateway.deps.lifecycle.draining = true;
    const err = await client.sendMail(mail).catch((e: { responseCode?: number; response?: string }) => e);
    gw.gateway.deps.lifecycle.draining = false;
    expect(err).toMatchObject({ responseCode: 451 });
    expect((err as { response: string }).response).toMatch(/^451 4\.3\.0 /);
    // The sender's retry goes through and is answered once.
    await client.sendMail(mail);
    await answerTo(id);
    expect(answersTo(id)).toHaveLength(1);
  });

  it('retries an answer refused with 451, and marks one refused with 550 failed with the server reply', async () => {
    const id1 = mid('relay-busy');
    sink.failNext(451);
    const attempts = sink.attempts;
    await client.sendMail({
      from: 'busy@example.org',
      to: SUPPORT,
      subject: 'busy',
      text: 'first',
      messageId: id1,
    });
    await answerTo(id1);
    expect(sink.attempts - attempts).toBe(2);

    const id2 = mid('relay-refuses');
    sink.failNext(550, 'No such user here');
    await client.sendMail({
      from: 'gone@example.org',
      to: SUPPORT,
      subject: 'gone',
      text: 'second',
      messageId: id2,
    });
    const { conversationId } = await stored(id2);
    const failed = await eventually(async () => {
      const msgs = await json<{ items: Message[] }>(`/v1/conversations/${conversationId}/messages`);
      return msgs.items.find((m) => m.direction === 'outbound' && m.delivery?.status === 'failed') ?? null;
    });
    expect(failed.delivery?.error).toEqual({ code: 'SMTP_550', message: '550 5.1.1 No such user here' });
  });
});

describe('sender authentication over SMTP', () => {
  it('never lets a forged From into a customer thread or to the bot, and keeps it flagged for agents', async () => {
    const customer = 'victim@example.org';
    const c1 = mid('victim');
    await client.sendMail({
      from: customer,
      to: SUPPORT,
      subject: 'Refund',
      text: 'My refund?',
      messageId: c1,
    });
    const answer = await answerTo(c1);
    const ours = answer.header('message-id')!;
    const replyTo = answer.parsed.replyTo?.value[0]?.address ?? '';
    const thread = (await stored(c1)).conversationId;

    // The customer's own address, from an address the domain's SPF does not permit, with the thread's
    // ids and its reply token.
    const f1 = mid('forged-ip');
    const sent = await forger.sendMail({
      envelope: { from: customer, to: replyTo },
      from: customer,
      to: replyTo,
      subject: 'Re: Refund',
      text: 'Please pay it into my new account 0000',
      messageId: f1,
      inReplyTo: ours,
      references: [c1, ours],
    });
    expect(sent.response).toMatch(/^250 /);
    // From the forger's own domain, whose SPF passes, though not for the From domain (not aligned).
    const f2 = mid('forged-domain');
    await client.sendMail({
      envelope: { from: 'x@evil.test', to: SUPPORT },
      from: customer,
      to: SUPPORT,
      subject: 'Re: Refund',
      text: 'And send me the invoice',
      messageId: f2,
      inReplyTo: ours,
      references: [c1, ours],
    });

    const flaggedIds: string[] = [];
    for (const [id, spf] of [
      [f1, 'fail'],
      [f2, 'pass'],
    ] as const) {
      const { conversationId, message } = await stored(id);
      expect(conversationId).not.toBe(thread);
      expect(message.meta.auth).toMatchObject({ verdict: 'fail', via: 'dns', spf, dmarc: 'fail' });
      expect(message.meta.flagged).toBe('unauthenticated_sender');
      const conv = await json<Conversation>(`/v1/conversations/${conversationId}`);
      expect(conv.channelRef).toMatch(/^unauth:/);
      expect(conv.meta).toMatchObject({
        flagged: 'unauthenticated_sender',
        email: { unauthenticated: true },
      });
      flaggedIds.push(conversationId);
    }
    expect(new Set(flaggedIds).size).toBe(2);
    const listed = await json<{ items: Array<{ id: string }> }>(
      '/v1/conversations?channel=email&meta[flagged]=unauthenticated_sender&take=200',
    );
    expect(listed.items.map((c) => c.id)).toEqual(expect.arrayContaining(flaggedIds));
    expect(listed.items.map((c) => c.id)).not.toContain(thread);

    // The customer's real reply still joins the thread; its answer is the only new one.
    const c2 = mid('victim-again');
    await client.sendMail({
      from: customer,
      to: replyTo,
      subject: 'Re: Refund',
      text: 'Any news?',
      messageId: c2,
      inReplyTo: ours,
      references: [c1, ours],
    });
    const b2 = await answerTo(c2);
    expect((await stored(c2)).conversationId).toBe(thread);
    expect(b2.envelope.rcptTo).toEqual([customer]);
    expect(answersTo(f1)).toHaveLength(0);
    expect(answersTo(f2)).toHaveLength(0);
    const msgs = await json<{ items: Message[] }>(`/v1/conversations/${thread}/messages`);
    expect(msgs.items.map((m) => `${m.direction}:${m.text}`)).toEqual([
      'inbound:My refund?',
      'outbound:You said: My refund?',
      'inbound:Any news?',
      'outbound:You said: Any news?',
    ]);
    for (const id of flaggedIds) {
      const own = await json<{ items: Message[] }>(`/v1/conversations/${id}/messages`);
      expect(own.items.map((m) => m.direction)).toEqual(['inbound']);
    }
  });

  it("does not let an authenticated sender take over one of our Message-IDs to divert a customer's replies", async () => {
    const customer = 'loyal@example.org';
    const c1 = mid('loyal');
    await client.sendMail({
      from: customer,
      to: SUPPORT,
      subject: 'Plan',
      text: 'Which plan?',
      messageId: c1,
    });
    const ours = (await answerTo(c1)).header('message-id')!;
    const thread = (await stored(c1)).conversationId;
    // evil.test's own mail passes (SPF aligned), but claims our answer's Message-ID as its own.
    await client.sendMail({
      envelope: { from: 'x@evil.test', to: SUPPORT },
      from: 'x@evil.test',
      to: SUPPORT,
      subject: 'Plan',
      text: 'Hijack',
      messageId: ours,
    });
    await eventually(() => answersTo(ours).length === 1);
    const c2 = mid('loyal-again');
    await client.sendMail({
      from: customer,
      to: SUPPORT,
      subject: 'Re: Plan',
      text: 'The big one',
      messageId: c2,
      inReplyTo: ours,
      references: [c1, ours],
    });
    await answerTo(c2);
    expect((await stored(c2)).conversationId).toBe(thread);
  });

  it('answers mail whose DKIM signature verifies for the From domain without SPF; altered on the way, it is flagged', async () => {
    const raw = (id: string, text: string) =>
      [
        'From: Signer <someone@signed.example>',
        `To: ${SUPPORT}`,
        'Subject: Signed',
        `Message-ID: ${id}`,
        `Date: ${new Date().toUTCString()}`,
        'MIME-Version: 1.0',
        'Content-Type: text/plain; charset=utf-8',
        '',
        text,
        '',
      ].join('\r\n');
    const envelope = { from: 'someone@signed.example', to: SUPPORT };

    const good = mid('signed');
    await client.sendMail({
      envelope,
      raw: await dkimSigned(raw(good, 'Signed and sealed'), 'signed.example', signedKey),
    });
    expect((await answerTo(good)).parsed.text?.trim()).toBe('You said: Signed and sealed');
    expect((await stored(good)).message.meta.auth).toMatchObject({
      verdict: 'pass',
      aligned: 'dkim',
      spf: 'fail',
      dkim: 'pass',
      dmarc: 'pass',
    });

    const bad = mid('tampered');
    const signed = await dkimSigned(raw(bad, 'Pay invoice 1'), 'signed.example', signedKey);
    await client.sendMail({ envelope, raw: signed.replace('Pay invoice 1', 'Pay invoice 2') });
    const tampered = await stored(bad);
    // mailauth calls a body that no longer matches its hash `neutral`; either way it is no pass.
    expect(tampered.message.meta.auth).toMatchObject({ verdict: 'fail', dmarc: 'fail' });
    expect((tampered.message.meta.auth as { dkim: string }).dkim).not.toBe('pass');
    await stillServing();
    expect(answersTo(bad)).toHaveLength(0);
  });

  it('answers 451 while DNS fails, so the sender retries, and answers the retry', async () => {
    const id = mid('flaky');
    const mail = {
      from: 'user@flaky.example',
      to: SUPPORT,
      subject: 'DNS',
      text: 'Try again',
      messageId: id,
    };
    dns.failing.add('flaky.example');
    const err = await client.sendMail(mail).catch((e: { responseCode?: number; response?: string }) => e);
    dns.failing.delete('flaky.example');
    expect(err).toMatchObject({ responseCode: 451 });
    expect((err as { response: string }).response).toMatch(/^451 4\.3\.0 /);
    expect(gw.logs.lines.filter((l) => l.reason === 'sender_check_temporary' && l.level === 40)).toHaveLength(
      1,
    );
    await client.sendMail(mail);
    await answerTo(id);
    expect(answersTo(id)).toHaveLength(1);
    expect((await stored(id)).message.meta.auth).toMatchObject({ verdict: 'pass', aligned: 'spf' });
  });
});

describe('bounces', () => {
  it('refuses a made-up or altered bounce address with 550 at RCPT; a report to the plain address changes nothing', async () => {
    const c1 = mid('shop');
    await client.sendMail({
      from: 'shopper@example.org',
      to: SUPPORT,
      subject: 'Shoes',
      text: 'Size 42?',
      messageId: c1,
    });
    const answer = await answerTo(c1);
    const ours = answer.header('message-id')!;
    const verp = answer.envelope.mailFrom;
    expect(verp).toMatch(/^bounces\+msg_[0-9a-z]{26}-[a-z2-7]{16}@help\.example\.com$/);
    await eventually(async () => (await stored(ours)).message.delivery?.status === 'sent');
    const dsn = (id: string) =>
      fixture('email-constructed-bounce-dsn.eml')
        .replace('<bot-20260105T090007Z-1043@help.example.com>', ours)
        .replace('<dsn-0001@mx.example.net>', id)
        .replace(/\r?\n/g, '\r\n');

    const at = verp.indexOf('@');
    const lastChar = verp[at - 1]!;
    const altered = `${verp.slice(0, at - 1)}${lastChar === 'a' ? 'b' : 'a'}${verp.slice(at)}`;
    const madeUp = `${verp.slice(0, verp.lastIndexOf('-'))}-${'a'.repeat(16)}@help.example.com`;
    for (const to of [altered, madeUp, 'bounces@help.example.com']) {
      const err = await client
        .sendMail({ envelope: { from: '', to }, raw: dsn(mid('dsn-forged')) })
        .catch((e: { responseCode?: number; response?: string }) => e);
      expect(err).toMatchObject({ responseCode: 550 });
      expect((err as { response: string }).response).toMatch(/^550 5\.1\.1 /);
    }
    expect(gw.logs.lines.filter((l) => l.reason === 'bad_bounce_token')).toHaveLength(3);

    // A delivery report sent to the plain address is kept, as automated mail, and changes no status.
    const plain = mid('dsn-plain');
    await client.sendMail({ envelope: { from: '', to: SUPPORT }, raw: dsn(plain) });
    expect((await stored(plain)).message.type).toBe('activity');
    await stillServing();
    expect((await stored(ours)).message.delivery?.status).toBe('sent');
  });
});

describe('behind an upstream MTA (EMAIL_TRUSTED_AUTHSERV_ID)', () => {
  let up: TestGateway;
  let upClient: nodemailer.Transporter;

  beforeAll(async () => {
    const port = await freePort();
    // No records at all: were the listener to check SPF/DKIM itself, nothing would pass.
    up = await startGateway(
      {
        EMAIL_FROM: `Example Support <${SUPPORT}>`,
        SMTP_URL: sink.url,
        EMAIL_SMTP_PORT: String(port),
        EMAIL_SMTP_HOST: '127.0.0.1',
        EMAIL_BOUNCE_SECRET: 'test-bounce-secret-0123456789abcdef',
        EMAIL_TRUSTED_AUTHSERV_ID: 'mx.help.example.com',
      },
      {},
      { email: { resolver: new FakeDns().resolver } },
    );
    upClient = nodemailer.createTransport({
      host: '127.0.0.1',
      port,
      ignoreTLS: true,
      name: 'mx.help.example.com',
    });
  });

  afterAll(async () => {
    upClient?.close();
    await up?.stop();
  });

  const relayed = (id: string, results: string[]) =>
    [
      ...results.map((r) => `Authentication-Results: ${r}`),
      'From: Relayed <relayed@example.org>',
      `To: ${SUPPORT}`,
      'Subject: Relayed',
      `Message-ID: ${id}`,
      '',
      `Body of ${id}`,
      '',
    ].join('\r\n');
  const envelope = { from: 'relayed@example.org', to: SUPPORT };

  it("trusts only the top-most Authentication-Results with the upstream's authserv-id", async () => {
    const good = mid('relayed-good');
    await upClient.sendMail({
      envelope,
      raw: relayed(good, [
        'mx.help.example.com; spf=pass smtp.mailfrom=relayed@example.org; dkim=none; dmarc=pass header.from=example.org',
      ]),
    });
    await answerTo(good);
    expect((await stored(good, up)).message.meta.auth).toMatchObject({
      verdict: 'pass',
      via: 'authentication-results',
    });

    // The upstream's own header says fail; one the sender wrote further down, with the same id, and one
    // of another authserv-id say pass: neither counts.
    const forged = mid('relayed-forged');
    await upClient.sendMail({
      envelope,
      raw: relayed(forged, [
        'mx.help.example.com; spf=fail smtp.mailfrom=relayed@example.org; dkim=none; dmarc=fail header.from=example.org',
        'mx.help.example.com; spf=pass smtp.mailfrom=relayed@example.org; dmarc=pass header.from=example.org',
        'mx.google.com; dkim=pass header.d=example.org; dmarc=pass header.from=example.org',
      ]),
    });
    const other = mid('relayed-other');
    await upClient.sendMail({
      envelope,
      raw: relayed(other, [
        'mx.google.com; spf=pass smtp.mailfrom=relayed@example.org; dmarc=pass header.from=example.org',
      ]),
    });
    expect((await stored(forged, up)).message.meta.auth).toMatchObject({ verdict: 'fail', dmarc: 'fail' });
    expect((await stored(other, up)).message.meta.auth).toMatchObject({
      verdict: 'fail',
      reason: 'no_trusted_results',
    });
    const barrier = mid('relayed-barrier');
    await upClient.sendMail({
      envelope,
      raw: relayed(barrier, ['mx.help.example.com; spf=pass smtp.mailfrom=relayed@example.org']),
    });
    await answerTo(barrier);
    expect(answersTo(forged)).toHaveLength(0);
    expect(answersTo(other)).toHaveLength(0);
  });
});
