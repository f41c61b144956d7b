/**
 * @module The built-in inbound SMTP listener (an MX for the support address), on smtp-server.
 *
 * Reply codes (RFC 5321 §4.2; enhanced codes RFC 3463, added by smtp-server):
 * - `550 5.1.1` at `RCPT TO` for a recipient outside `EMAIL_ACCEPT`;
 * - `552` for a message over `EMAIL_MAX_BYTES` (advertised with `SIZE`, refused at `MAIL FROM` when the
 *   client declares a larger size, and after `DATA` otherwise);
 * - `554 5.6.0` for a message that cannot be stored at all (no valid `From`, unparseable MIME);
 * - `451 4.3.0` when the message cannot be accepted right now (store down, queue full, shutting
 *   down): the sending MTA keeps it and retries;
 * - `250` only after the message is stored and queued.
 * - `550 5.1.1` at `RCPT TO` also for a bounce address whose token does not verify;
 * - `451 4.3.0` when the sender checks could not complete (a DNS failure) and did not pass.
 * No AUTH is offered: an MX receives from anyone (CHANNELS.md §3.4); STARTTLS only with a certificate.
 * Every message is sender-checked (auth.ts) before it is handed to the receiver.
 */
import { readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { simpleParser } from 'mailparser';
import type { Logger } from 'pino';
import { SMTPServer, type SMTPServerDataStream, type SMTPServerSession } from 'smtp-server';
import { type AuthVerdict, authenticateSmtp, verdictFromAuthResults } from './auth.js';
import type { EmailConfig } from './config.js';
import { fromParsedMail, MailRejected } from './inbound.js';
import type { MailReceiver } from './receive.js';
import { bouncedMessageId, isAcceptedRecipient, isBounceAddress } from './verify.js';

/** An smtp-server error with the reply code it should send. */
function smtpError(code: number, message: string): Error & { responseCode: number } {
  return Object.assign(new Error(message), { responseCode: code });
}

export interface SmtpListenerDeps {
  config: EmailConfig;
  logger: Logger;
  receiver: MailReceiver;
  rejected(reason: string): void;
}

export class SmtpListener {
  readonly #deps: SmtpListenerDeps;
  #server: SMTPServer | null = null;

  constructor(deps: SmtpListenerDeps) {
    this.#deps = deps;
  }

  /** The bound port (useful with `EMAIL_SMTP_PORT=0`). */
  get port(): number | undefined {
    const address = this.#server?.server.address() as AddressInfo | null | undefined;
    return address?.port;
  }

  async start(): Promise<void> {
    const { config } = this.#deps;
    const listener = config.listener;
    if (!listener) return;
    const tls = listener.tls
      ? { key: await readFile(listener.tls.keyPath), cert: await readFile(listener.tls.certPath) }
      : undefined;
    const server = new SMTPServer({
      name: config.from.domain,
      banner: 'Switchboard ESMTP',
      size: config.maxBytes,
      rejectOversized: true,
      authOptional: true,
      // RFC 3463 enhanced codes (5.1.1, 4.3.0 ...) tell the sending MTA precisely why.
      hideENHANCEDSTATUSCODES: false,
      disabledCommands: tls ? ['AUTH'] : ['AUTH', 'STARTTLS'],
      ...(tls ?? {}),
      logger: false,
      // A stuck client must not hold a connection for smtp-server's default of one minute per step.
      socketTimeout: 30_000,
      closeTimeout: 5_000,
      onMailFrom: (_address, _session, cb) => cb(),
      onRcptTo: (address, session, cb) => this.#onRcptTo(address.address, session, cb),
      onData: (stream, session, cb) => this.#onData(stream, session, cb),
    });
    server.on('error', (err) =>
      this.#deps.logger.warn({ err: { message: err.message } }, 'email: SMTP connection error'),
    );
    await new Promise<void>((resolve, reject) => {
      server.server.once('error', reject);
      server.listen(listener.port, listener.host, () => {
        server.server.off('error', reject);
        resolve();
      });
    });
    this.#server = server;
  }

  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = null;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  #refuse(reason: string, detail: Record<string, unknown>): void {
    this.#deps.logger.warn({ reason, ...detail }, `email: SMTP message refused (${reason})`);
    this.#deps.rejected(reason);
  }

  #onRcptTo(address: string, session: SMTPServerSession, cb: (err?: Error | null) => void): void {
    const { config } = this.#deps;
    if (isBounceAddress(address, config.from.domain)) {
      // Bounces come back to the VERP address of one answer; a made-up or altered token is refused.
      if (bouncedMessageId(address, config.bounceSecret, config.from.domain)) {
        cb();
        return;
      }
      this.#refuse('bad_bounce_token', { remote: session.remoteAddress });
      cb(smtpError(550, 'No such mailbox here'));
      return;
    }
    if (isAcceptedRecipient(address, config.accept)) {
      cb();
      return;
    }
    this.#refuse('unknown_recipient', { remote: session.remoteAddress, recipient: address.slice(0, 254) });
    cb(smtpError(550, 'No such mailbox here'));
  }

  #onData(
    stream: SMTPServerDataStream,
    session: SMTPServerSession,
    cb: (err?: Error | null, msg?: string) => void,
  ): void {
    const chunks: Buffer[] = [];
    let size = 0;
    let answered = false;
    const answer = (err: Error | null, reply?: string) => {
      if (answered) return;
      answered = true;
      cb(err, reply);
    };
    stream.on('data', (chunk: Buffer) => {
      size += chunk.length;
      // Past the limit the rest is read and dropped; smtp-server answers 552 (rejectOversized).
      if (size <= this.#deps.config.maxBytes) chunks.push(chunk);
    });
    stream.on('error', (err) => answer(smtpError(451, `Error reading the message: ${err.message}`)));
    stream.on('end', () => {
      if (stream.sizeExceeded) {
        this.#refuse('too_large', { remote: session.remoteAddress, bytes: size });
        answer(smtpError(552, 'Message exceeds the maximum size'));
        return;
      }
      this.#handle(Buffer.concat(chunks), session).then(
        (reply) => answer(null, reply),
        (err: Error) => answer(err),
      );
    });
  }

  /**
   * The sender check: the trusted upstream's `Authentication-Results` when `EMAIL_TRUSTED_AUTHSERV_ID`
   * is set, else SPF/DKIM/DMARC here with the client's address, HELO and MAIL FROM.
   */
  async #authenticate(
    raw: Buffer,
    headers: ReadonlyArray<readonly [string, string]>,
    session: SMTPServerSession,
    mailFrom: string | null,
  ): Promise<AuthVerdict> {
    const { config } = this.#deps;
    if (config.trustedAuthservId) return verdictFromAuthResults(headers, config.trustedAuthservId);
    return authenticateSmtp(raw, {
      ip: session.remoteAddress,
      helo: session.hostNameAppearsAs ?? '',
      mailFrom,
      mta: config.from.domain,
      ...(config.resolver ? { resolver: config.resolver } : {}),
    });
  }

  async #handle(raw: Buffer, session: SMTPServerSession): Promise<string> {
    const envelope = session.envelope;
    const mailFrom = envelope.mailFrom === false ? undefined : envelope.mailFrom.address || null;
    try {
      const parsed = await simpleParser(raw, { skipImageLinks: true, skipTextToHtml: true }).catch(
        (err: Error) => {
          throw new MailRejected('malformed_mime', `The message could not be parsed: ${err.message}`);
        },
      );
      const input = fromParsedMail(parsed, { mailFrom, rcptTo: envelope.rcptTo.map((r) => r.address) });
      const auth = await this.#authenticate(raw, input.headers, session, mailFrom ?? null);
      if (auth.verdict === 'fail' && auth.temporary) {
        // Logged and counted like every refusal; the sender keeps the mail and retries.
        this.#refuse('sender_check_temporary', {
          remote: session.remoteAddress,
          auth: { spf: auth.spf, dkim: auth.dkim, dmarc: auth.dmarc },
        });
        throw smtpError(451, 'Temporary failure checking the sender, please try again later');
      }
      const outcome = await this.#deps.receiver.receive(input, auth);
      return outcome.duplicate ? 'OK: already received' : `OK: queued as ${outcome.messageId}`;
    } catch (err) {
      if ((err as { responseCode?: number }).responseCode === 451) throw err;
      if (err instanceof MailRejected) {
        this.#refuse(err.reason, { remote: session.remoteAddress });
        throw smtpError(554, err.message);
      }
      this.#deps.logger.error(
        {
          err: { message: (err as Error).message, code: (err as { code?: string }).code },
          remote: session.remoteAddress,
        },
        'email: could not accept a message; answered 451 so the sender retries',
      );
      throw smtpError(451, 'Temporary failure, please try again later');
    }
  }
}
