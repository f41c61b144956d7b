import { simpleParser } from 'mailparser';
import nodemailer from 'nodemailer';
import { describe, expect, it } from 'vitest';
import { parseFrom } from '../../adapters/email/config.js';
import {
  buildMail,
  isTransient,
  type MailTransport,
  replySubject,
  senderName,
  sendWithRetry,
  transportOptions,
} from '../../adapters/email/outbound.js';
import { PermanentSendError } from '../../src/core/index.js';

const from = parseFrom('Example Support <support@help.example.com>')!;

/** Renders a message to raw MIME with nodemailer's stream transport (no network). */
async function render(mail: Parameters<typeof buildMail>[0]): Promise<string> {
  const transport = nodemailer.createTransport({ streamTransport: true, buffer: true, newline: 'windows' });
  const info = await transport.sendMail(buildMail(mail));
  return (info.message as Buffer).toString('utf8');
}

function smtpError(responseCode: number | undefined, code: string, response?: string): Error {
  return Object.assign(new Error(response ?? code), { responseCode, code, response });
}

describe('email outbound message', () => {
  it('threads the reply: Re: subject, Message-ID, In-Reply-To, References chain, loop headers', async () => {
    const raw = await render({
      from,
      to: { address: 'customer@example.org', name: 'Customer Name' },
      replyToken: 'abcdefghijklmnop',
      messageId: '<msg_1@help.example.com>',
      parent: {
        messageId: '<c2@example.org>',
        references: ['<c1@example.org>', '<msg_0@help.example.com>'],
        subject: 'Re: Order',
      },
      subject: 'Re: Order',
      text: 'Hello <you> & welcome',
    });
    const parsed = await simpleParser(raw);
    expect(parsed.subject).toBe('Re: Order');
    expect(parsed.messageId).toBe('<msg_1@help.example.com>');
    expect(parsed.inReplyTo).toBe('<c2@example.org>');
    expect(parsed.references).toEqual(['<c1@example.org>', '<msg_0@help.example.com>', '<c2@example.org>']);
    expect(parsed.replyTo?.value[0]?.address).toBe('support+abcdefghijklmnop@help.example.com');
    expect(parsed.headers.get('auto-submitted')).toBe('auto-replied');
    expect(parsed.headers.get('x-auto-response-suppress')).toBe('All');
    expect(parsed.text?.trim()).toBe('Hello <you> & welcome');
    expect(parsed.html).toContain('Hello &#60;you&#62; &#38; welcome');
  });

  it('uses the parent In-Reply-To when it has no References, and none for a first message', () => {
    const withInReplyTo = buildMail({
      from,
      to: { address: 'c@example.org' },
      replyToken: 'abcdefghijklmnop',
      messageId: '<m@help.example.com>',
      parent: { messageId: '<b@x>', inReplyTo: '<a@x>', references: [], subject: 's' },
      subject: 's',
      text: 't',
    });
    expect(withInReplyTo.references).toEqual(['<a@x>', '<b@x>']);
    const first = buildMail({ ...withInReplyToInput(), parent: null });
    expect(first.inReplyTo).toBeUndefined();
    expect(first.references).toBeUndefined();
  });

  it('cannot inject headers through a subject, a name or a token with CR/LF', async () => {
    const raw = await render({
      from,
      to: { address: 'customer@example.org', name: 'Eve\r\nBcc: victim@example.net' },
      replyToken: 'abc\r\nX-Injected: 1',
      messageId: '<m@help.example.com>',
      parent: null,
      subject: 'Hello\r\nBcc: victim@example.net\r\nX-Injected: yes',
      text: 'body',
    });
    const headerBlock = raw.slice(0, raw.indexOf('\r\n\r\n'));
    expect(headerBlock).not.toMatch(/^Bcc:/im);
    expect(headerBlock).not.toMatch(/^X-Injected:/im);
    const parsed = await simpleParser(raw);
    expect(parsed.subject).toBe('Re: Hello Bcc: victim@example.net X-Injected: yes');
    expect(parsed.bcc).toBeUndefined();
  });

  it("shows an agent as '<agent> via <gateway name>' and copies the other participants, without CR/LF", async () => {
    const raw = await render({
      from,
      agentName: 'Ana\r\nBcc: evil@x.test',
      to: { address: 'carla@example.org', name: 'Carla' },
      cc: [{ address: 'dan@example.org' }, { address: 'erin@example.org', name: 'Erin' }],
      replyToken: 'abcdefghijklmnop',
      messageId: '<msg_2@help.example.com>',
      parent: null,
      subject: 'Invoice',
      text: 'Fixed.',
      bounceAddress: 'bounces+msg_2-abc@help.example.com',
    });
    const parsed = await simpleParser(raw);
    expect(parsed.from?.value[0]).toEqual({
      name: 'Ana Bcc: evil@x.test via Example Support',
      address: 'support@help.example.com',
    });
    expect(parsed.headers.get('bcc')).toBeUndefined();
    const cc = [parsed.cc ?? []].flat().flatMap((a) => a.value.map((v) => v.address));
    expect(cc).toEqual(['dan@example.org', 'erin@example.org']);
    expect(
      buildMail({
        from,
        to: { address: 'carla@example.org' },
        cc: [{ address: 'dan@example.org' }],
        replyToken: 't',
        messageId: '<m@x>',
        parent: null,
        subject: '',
        text: '',
        bounceAddress: 'b@x',
      }).envelope,
    ).toEqual({ from: 'b@x', to: ['carla@example.org', 'dan@example.org'] });
  });

  it('names the sender: the agent via the gateway name, the agent alone, or the gateway alone', () => {
    expect(senderName('Support', 'Ana')).toBe('Ana via Support');
    expect(senderName(undefined, 'Ana')).toBe('Ana');
    expect(senderName('Support', undefined)).toBe('Support');
    expect(senderName('Support', '  ')).toBe('Support');
  });

  it('never writes Re: Re:', () => {
    expect(replySubject('Order')).toBe('Re: Order');
    expect(replySubject('Re: Order')).toBe('Re: Order');
    expect(replySubject('RE: re:Order')).toBe('Re: Order');
    expect(replySubject('Aw: Order')).toBe('Re: Order');
    expect(replySubject('')).toBe('Re: (no subject)');
  });

  it('reads SMTP_URL like nodemailer, with short timeouts', () => {
    const o = transportOptions(
      'smtps://user%40x:p%3Ass@relay.example.com:465?tls.rejectUnauthorized=false&pool=true',
    ) as Record<string, unknown>;
    expect(o).toMatchObject({
      host: 'relay.example.com',
      port: 465,
      secure: true,
      auth: { user: 'user@x', pass: 'p:ss' },
      tls: { rejectUnauthorized: false },
      pool: true,
      connectionTimeout: 10_000,
    });
    expect(transportOptions('smtp://relay:25')).toMatchObject({ secure: false, port: 25 });
  });
});

function withInReplyToInput(): Parameters<typeof buildMail>[0] {
  return {
    from,
    to: { address: 'c@example.org' },
    replyToken: 'abcdefghijklmnop',
    messageId: '<m@help.example.com>',
    parent: null,
    subject: 's',
    text: 't',
  };
}

describe('email outbound retries', () => {
  const mail = buildMail(withInReplyToInput());
  const noSleep = async () => undefined;

  function transport(outcomes: Array<Error | null>): MailTransport & { calls: number } {
    const t = {
      calls: 0,
      async sendMail() {
        const outcome = outcomes[t.calls++];
        if (outcome) throw outcome;
        return { response: '250 OK' };
      },
    };
    return t;
  }

  it('retries a 4xx and a dropped connection, then succeeds', async () => {
    const t = transport([
      smtpError(451, 'EMESSAGE', '451 4.3.0 Try later'),
      smtpError(undefined, 'ECONNECTION'),
      null,
    ]);
    const slept: number[] = [];
    await sendWithRetry(t, mail, [10, 20, 30], async (ms) => {
      slept.push(ms);
    });
    expect(t.calls).toBe(3);
    expect(slept).toEqual([10, 20]);
  });

  it('stops at a 5xx with the server reply as a permanent failure', async () => {
    const t = transport([smtpError(550, 'EENVELOPE', '550 5.1.1 No such user here')]);
    const err = await sendWithRetry(t, mail, [10], noSleep).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PermanentSendError);
    expect(err).toMatchObject({ code: 'SMTP_550', message: '550 5.1.1 No such user here' });
    expect(t.calls).toBe(1);
  });

  it('gives up after the last transient attempt', async () => {
    const t = transport([
      smtpError(421, 'ECONNECTION'),
      smtpError(421, 'ECONNECTION'),
      smtpError(421, 'ECONNECTION'),
    ]);
    await expect(sendWithRetry(t, mail, [1, 1], noSleep)).rejects.toMatchObject({ responseCode: 421 });
    expect(t.calls).toBe(3);
    expect(isTransient(smtpError(535, 'EAUTH'))).toBe(false);
    expect(isTransient(smtpError(undefined, 'ETIMEDOUT'))).toBe(true);
  });
});
