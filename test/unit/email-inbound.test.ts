import { readFileSync } from 'node:fs';
import { simpleParser } from 'mailparser';
import { describe, expect, it } from 'vitest';
import type { AcceptRule } from '../../adapters/email/config.js';
import {
  automatedReason,
  fromParsedMail,
  type MailInput,
  MailRejected,
  messageIds,
  normalizeMail,
  safeContentType,
  safeFilename,
} from '../../adapters/email/inbound.js';
import { fromMailgunFields } from '../../adapters/email/mailgun.js';
import { isAcceptedRecipient } from '../../adapters/email/verify.js';

const eml = (name: string) => readFileSync(new URL(`../fixtures/${name}`, import.meta.url));
const accept: AcceptRule[] = [{ kind: 'address', local: 'support', domain: 'help.example.com' }];
const opts = { accept, isOwnAddress: (a: string) => isAcceptedRecipient(a, accept) };

async function input(
  raw: Buffer | string,
  envelope: MailInput['envelope'] = { rcptTo: [] },
): Promise<MailInput> {
  return fromParsedMail(await simpleParser(raw), envelope);
}

describe('email inbound normalization', () => {
  it('strips quoted history and the phone signature, keeps the full text and the attachment', async () => {
    const mail = normalizeMail(await input(eml('email-constructed-reply-quoted-multipart.eml')), opts);
    expect(mail.visibleText).toBe(
      'Thanks, that worked! One more question: can I change the delivery address?',
    );
    expect(mail.fullText).toContain('> Hi! Your order #1042 has shipped.');
    expect(mail.meta.fullText).toBe(mail.fullText);
    expect(mail.automated).toBeUndefined();
    expect(mail.attachments).toHaveLength(1);
    expect(mail.attachments[0]).toMatchObject({ name: 'receipt.png', contentType: 'image/png' });
    expect(mail.attachments[0]!.content.subarray(1, 4).toString()).toBe('PNG');
    expect(mail.dedupeKey).toBe('mid:<CAF=reply-0001@mail.example.org>');
    // In-Reply-To first, then References newest to oldest (CHANNELS.md §3.6 rule 2).
    expect(mail.threadIds).toEqual([
      '<bot-20260105T090000Z-1042@help.example.com>',
      '<bot-20260104T170000Z-1042@help.example.com>',
    ]);
  });

  it('threads the RFC 5322 A.2 example by In-Reply-To, then References newest first', async () => {
    const original = normalizeMail(await input(eml('email-rfc5322-a2-1-original.eml')), opts);
    expect(original.threadIds).toEqual([]);
    expect(original.rootRef).toBe('<1234@local.machine.example>');
    const third = normalizeMail(await input(eml('email-rfc5322-a2-3-reply-to-reply.eml')), opts);
    expect(third.threadIds).toEqual(['<3456@example.net>', '<1234@local.machine.example>']);
    expect(third.visibleText).toBe('This is a reply to your reply.');
  });

  it('marks the out-of-office reply automated and does not strip it', async () => {
    const mail = normalizeMail(await input(eml('email-constructed-auto-reply-rfc3834.eml')), opts);
    expect(mail.automated).toBe('auto-submitted');
    expect(mail.bounce).toBeUndefined();
    expect(mail.visibleText).toMatch(/out of the office/);
  });

  it('reads the DSN: our Message-ID, the status and the diagnostic', async () => {
    const mail = normalizeMail(await input(eml('email-constructed-bounce-dsn.eml')), opts);
    expect(mail.automated).toBe('report');
    expect(mail.bounce).toEqual({
      originalMessageIds: ['<bot-20260105T090007Z-1043@help.example.com>'],
      failed: true,
      status: '5.1.1',
      diagnostic: '550 5.1.1 User unknown',
    });
  });

  it('detects each loop signal of CHANNELS.md §3.7 and lets a person through', async () => {
    const base = 'From: a@example.org\r\nTo: support@help.example.com\r\nSubject: s\r\nMessage-ID: <x@y>\r\n';
    const reason = async (extra: string, from = base) =>
      automatedReason(await input(`${from}${extra}\r\nhello\r\n`), opts.isOwnAddress);
    expect(await reason('')).toBeUndefined();
    expect(await reason('Auto-Submitted: no\r\n')).toBeUndefined();
    expect(await reason('Auto-Submitted: auto-generated (warning-timeout)\r\n')).toBe('auto-submitted');
    expect(await reason('X-Auto-Response-Suppress: OOF\r\n')).toBe('x-auto-response-suppress');
    expect(await reason('List-Id: <news.example.org>\r\n')).toBe('mailing-list');
    expect(await reason('List-Unsubscribe: <mailto:u@example.org>\r\n')).toBe('mailing-list');
    expect(await reason('Feedback-ID: 1:2:3\r\n')).toBe('mailing-list');
    expect(await reason('Precedence: bulk\r\n')).toBe('precedence');
    expect(await reason('X-Autorespond: yes\r\n')).toBe('x-autoreply');
    expect(await reason('Return-Path: <>\r\n')).toBe('null-sender');
    expect(await reason('', base.replace('a@example.org', 'postmaster@example.org'))).toBe('mailer-daemon');
    expect(await reason('', base.replace('a@example.org', 'Support+x@help.example.com'))).toBe('own-address');
    const nullEnvelope = await input(`${base}\r\nhello\r\n`, { mailFrom: null, rcptTo: [] });
    expect(automatedReason(nullEnvelope, opts.isOwnAddress)).toBe('null-sender');
  });

  it('turns HTML-only mail into readable text', async () => {
    const raw =
      'From: a@example.org\r\nTo: support@help.example.com\r\nSubject: html\r\nMessage-ID: <h@example.org>\r\n' +
      'Content-Type: text/html; charset=utf-8\r\n\r\n<p>Hello <b>there</b></p><ul><li>first</li></ul><script>alert(1)</script>\r\n';
    const mail = normalizeMail(await input(raw), opts);
    expect(mail.visibleText).toMatch(/^Hello there\s+\* first$/);
    expect(mail.visibleText).not.toContain('<');
  });

  it('dedupes on a content hash when Message-ID is missing, and refuses mail without a From', async () => {
    const raw = 'From: a@example.org\r\nTo: support@help.example.com\r\nSubject: no id\r\n\r\nhello\r\n';
    const one = normalizeMail(await input(raw), opts);
    const two = normalizeMail(await input(`Received: from relay\r\n${raw}`), opts);
    expect(one.dedupeKey).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(two.dedupeKey).toBe(one.dedupeKey);
    expect(one.rootRef).toBe(one.dedupeKey);
    const noFrom = await input(raw.replace('From: a@example.org\r\n', ''));
    expect(() => normalizeMail(noFrom, opts)).toThrow(MailRejected);
    const garbage = await input(Buffer.from('\u0000\u0001 not a message at all'));
    expect(() => normalizeMail(garbage, opts)).toThrow(MailRejected);
  });

  it('finds reply tokens in accepted envelope recipients only', async () => {
    const raw =
      'From: a@example.org\r\nTo: support+abcdefghijklmnop@help.example.com\r\nMessage-ID: <t@x>\r\n\r\nhi\r\n';
    expect(normalizeMail(await input(raw), opts).tokens).toEqual(['abcdefghijklmnop']);
    const viaEnvelope = await input(raw.replace('+abcdefghijklmnop', ''), {
      rcptTo: ['support+qrstuvwxyz234567@help.example.com', 'other+abcdefghijklmnop@elsewhere.example'],
    });
    expect(normalizeMail(viaEnvelope, opts).tokens).toEqual(['qrstuvwxyz234567']);
  });

  it('maps Mailgun parsed fields onto the same shape', async () => {
    const fixture = JSON.parse(
      readFileSync(new URL('../fixtures/mailgun-route-forward-parsed.json', import.meta.url), 'utf8'),
    );
    const fields = new Map(Object.entries(fixture.form_fields as Record<string, string>));
    const mail = normalizeMail(await fromMailgunFields(fields, new Map()), opts);
    expect(mail.from).toEqual({ address: 'customer@example.org', name: 'Customer Name' });
    expect(mail.messageId).toBe('<CAF=reply-0001@mail.example.org>');
    expect(mail.threadIds).toEqual(['<bot-20260105T090000Z-1042@help.example.com>']);
    expect(mail.visibleText).toBe('Thanks, that worked!');
    expect(mail.subject).toBe('Re: [Ticket #1042] Your order status');
  });

  it('keeps names, types and ids safe', () => {
    expect(safeFilename('../../etc/passwd', 0)).toBe('.._.._etc_passwd');
    expect(safeFilename('a\r\nb"c.txt', 0)).toBe('abc.txt');
    expect(safeFilename(undefined, 2)).toBe('attachment-3');
    expect(safeContentType('Image/PNG; name=x')).toBe('image/png');
    expect(safeContentType('text/html\r\nX-Evil: 1')).toBe('application/octet-stream');
    expect(messageIds(['<a@b>', '<c@d> <e@f>'])).toEqual(['<a@b>', '<c@d>', '<e@f>']);
  });
});
