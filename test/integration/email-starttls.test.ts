/**
 * Inbound SMTP over STARTTLS: with EMAIL_TLS_KEY and EMAIL_TLS_CERT set, the built-in listener
 * advertises STARTTLS, upgrades the connection with that certificate, and takes mail over the
 * encrypted channel like any other. The key pair and the self-signed certificate are made at run time
 * with openssl, so no key material lives in the repository.
 */
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type TLSSocket, connect as tlsConnect } from 'node:tls';
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeDns } from '../fakes/dns.js';
import { SmtpSink } from '../fakes/smtp-sink.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { freePort } from '../helpers/redis.js';

const SUPPORT = 'support@help.example.com';
const MX = 'mx.help.example.com';

let dir: string;
let cert: string;
let sink: SmtpSink;
let gw: TestGateway;
let port: number;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'smtp-tls-'));
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      join(dir, 'key.pem'),
      '-out',
      join(dir, 'cert.pem'),
      '-days',
      '1',
      '-subj',
      `/CN=${MX}`,
      '-addext',
      `subjectAltName=DNS:${MX}`,
    ],
    { stdio: 'ignore' },
  );
  cert = readFileSync(join(dir, 'cert.pem'), 'utf8');
  sink = await SmtpSink.start();
  port = await freePort();
  const dns = new FakeDns().spf('example.org', 'v=spf1 ip4:127.0.0.1 -all').dmarc('example.org');
  gw = await startGateway(
    {
      EMAIL_FROM: `Example Support <${SUPPORT}>`,
      SMTP_URL: sink.url,
      EMAIL_SMTP_PORT: String(port),
      EMAIL_SMTP_HOST: '127.0.0.1',
      EMAIL_BOUNCE_SECRET: 'test-bounce-secret-0123456789abcdef',
      EMAIL_TLS_KEY: join(dir, 'key.pem'),
      EMAIL_TLS_CERT: join(dir, 'cert.pem'),
    },
    {},
    { email: { resolver: dns.resolver } },
  );
});

afterAll(async () => {
  await gw?.stop();
  await sink?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Reads SMTP replies off a socket: resolves with the next complete (possibly multi-line) reply. */
function replies(socket: Socket | TLSSocket): () => Promise<string> {
  let buffer = '';
  const waiting: Array<(reply: string) => void> = [];
  const drain = () => {
    for (;;) {
      // A reply ends with a line whose code is followed by a space (RFC 5321 §4.2.1).
      const match = /(^|\r\n)(\d{3}) [^\r\n]*\r\n/.exec(buffer);
      const next = waiting[0];
      if (!match || !next) return;
      const end = match.index + match[0].length;
      waiting.shift();
      next(buffer.slice(0, end));
      buffer = buffer.slice(end);
    }
  };
  socket.on('data', (chunk: Buffer) => {
    buffer += chunk.toString('utf8');
    drain();
  });
  return () =>
    new Promise((resolve) => {
      waiting.push(resolve);
      drain();
    });
}

function fingerprint(pem: string): string {
  return new X509Certificate(pem).fingerprint256;
}

describe('inbound SMTP over STARTTLS', () => {
  it('advertises STARTTLS, upgrades with the configured certificate and takes mail inside TLS', async () => {
    const plain = netConnect(port, '127.0.0.1');
    const readPlain = replies(plain);
    expect(await readPlain()).toMatch(/^220 /);
    plain.write('EHLO mail.example.org\r\n');
    const ehlo = await readPlain();
    expect(ehlo).toMatch(/^250-STARTTLS\r$/m);
    // No AUTH on an MX, with or without TLS.
    expect(ehlo).not.toMatch(/AUTH/);
    plain.write('STARTTLS\r\n');
    expect(await readPlain()).toMatch(/^220 /);
    plain.removeAllListeners('data');

    const secure = tlsConnect({ socket: plain, servername: MX, ca: cert });
    await new Promise<void>((resolve, reject) => {
      secure.once('secureConnect', resolve);
      secure.once('error', reject);
    });
    expect(secure.authorized).toBe(true);
    // The very certificate made for this test, not some default one.
    const peer = secure.getPeerX509Certificate();
    expect(peer?.fingerprint256).toBe(fingerprint(cert));
    const read = replies(secure);
    const say = async (line: string) => {
      secure.write(`${line}\r\n`);
      return read();
    };
    // After STARTTLS the client starts over (RFC 3207 §4.2); STARTTLS is no longer offered.
    const ehlo2 = await say('EHLO mail.example.org');
    expect(ehlo2).toMatch(/^250/);
    expect(ehlo2).not.toMatch(/STARTTLS/);
    expect(await say('MAIL FROM:<tls-customer@example.org>')).toMatch(/^250 /);
    expect(await say('RCPT TO:<nobody@elsewhere.example>')).toMatch(/^550 /);
    expect(await say(`RCPT TO:<${SUPPORT}>`)).toMatch(/^250 /);
    expect(await say('DATA')).toMatch(/^354 /);
    const messageId = `<tls-raw-${Date.now()}@mail.example.org>`;
    const mail = [
      'From: TLS Customer <tls-customer@example.org>',
      `To: ${SUPPORT}`,
      'Subject: over TLS',
      `Message-ID: ${messageId}`,
      `Date: ${new Date().toUTCString()}`,
      'Content-Type: text/plain; charset=utf-8',
      '',
      'hello over tls',
      '.',
    ].join('\r\n');
    expect(await say(mail)).toMatch(/^250 /);
    await say('QUIT');
    secure.end();

    const answer = await sink.waitFor((m) => m.header('in-reply-to') === messageId, 10_000);
    expect(answer.parsed.text?.trim()).toBe('You said: hello over tls');
  });

  it('serves a mail client that requires TLS and checks the certificate', async () => {
    const client = nodemailer.createTransport({
      host: '127.0.0.1',
      port,
      requireTLS: true,
      name: 'mail.example.org',
      tls: { ca: cert, servername: MX },
    });
    try {
      const messageId = `<tls-client-${Date.now()}@mail.example.org>`;
      const sent = await client.sendMail({
        from: 'client@example.org',
        to: SUPPORT,
        subject: 'required tls',
        text: 'encrypted please',
        messageId,
      });
      expect(sent.response).toMatch(/^250 /);
      const answer = await sink.waitFor((m) => m.header('in-reply-to') === messageId, 10_000);
      expect(answer.parsed.text?.trim()).toBe('You said: encrypted please');
    } finally {
      client.close();
    }
  });

  it('still takes plain mail from a sender that does not use STARTTLS (a public MX must, RFC 3207 §4)', async () => {
    const client = nodemailer.createTransport({
      host: '127.0.0.1',
      port,
      ignoreTLS: true,
      name: 'mail.example.org',
    });
    try {
      const messageId = `<tls-plain-${Date.now()}@mail.example.org>`;
      const sent = await client.sendMail({
        from: 'plain@example.org',
        to: SUPPORT,
        subject: 'no tls',
        text: 'in the clear',
        messageId,
      });
      expect(sent.response).toMatch(/^250 /);
      const answer = await sink.waitFor((m) => m.header('in-reply-to') === messageId, 10_000);
      expect(answer.parsed.text?.trim()).toBe('You said: in the clear');
    } finally {
      client.close();
    }
  });
});
