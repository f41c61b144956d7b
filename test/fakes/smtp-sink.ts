/**
 * A real SMTP server on loopback (smtp-server) that records every message it receives, parsed with
 * mailparser, for tests of outbound mail. It can refuse the next messages with a 4xx or 5xx reply.
 */
import type { AddressInfo } from 'node:net';
import { type ParsedMail, simpleParser } from 'mailparser';
import { SMTPServer } from 'smtp-server';

export interface SinkMessage {
  envelope: { mailFrom: string; rcptTo: string[] };
  raw: Buffer;
  parsed: ParsedMail;
  /** A header's raw value (unfolded), by case-insensitive name. */
  header(name: string): string | undefined;
}

export class SmtpSink {
  readonly messages: SinkMessage[] = [];
  /** Every DATA attempt, refused ones included. */
  attempts = 0;
  readonly #server: SMTPServer;
  readonly #failures: Array<{ code: number; message: string }> = [];
  #port = 0;

  private constructor() {
    this.#server = new SMTPServer({
      authOptional: true,
      hideENHANCEDSTATUSCODES: false,
      disabledCommands: ['AUTH', 'STARTTLS'],
      logger: false,
      onData: (stream, session, cb) => {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          this.attempts += 1;
          const failure = this.#failures.shift();
          if (failure) {
            cb(Object.assign(new Error(failure.message), { responseCode: failure.code }));
            return;
          }
          const raw = Buffer.concat(chunks);
          simpleParser(raw).then(
            (parsed) => {
              const lines = parsed.headerLines;
              this.messages.push({
                envelope: {
                  mailFrom: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
                  rcptTo: session.envelope.rcptTo.map((r) => r.address),
                },
                raw,
                parsed,
                header(name) {
                  const line = lines.find((l) => l.key === name.toLowerCase())?.line;
                  return line
                    ?.slice(line.indexOf(':') + 1)
                    .replace(/\r?\n[ \t]+/g, ' ')
                    .trim();
                },
              });
              cb(null, 'OK: recorded');
            },
            (err: Error) => cb(err),
          );
        });
      },
    });
  }

  static async start(): Promise<SmtpSink> {
    const sink = new SmtpSink();
    await new Promise<void>((resolve) => sink.#server.listen(0, '127.0.0.1', () => resolve()));
    sink.#port = (sink.#server.server.address() as AddressInfo).port;
    return sink;
  }

  get port(): number {
    return this.#port;
  }

  /** `smtp://127.0.0.1:<port>`, for `SMTP_URL`. */
  get url(): string {
    return `smtp://127.0.0.1:${this.#port}`;
  }

  /** Refuses the next `times` messages with `code` (e.g. 451 or 550) and `message`. */
  failNext(code: number, message = code >= 500 ? 'No such user here' : 'Try again later', times = 1): void {
    for (let i = 0; i < times; i++) this.#failures.push({ code, message });
  }

  /** Resolves with the first recorded message matching `predicate`, polling until `timeoutMs`. */
  async waitFor(predicate: (m: SinkMessage) => boolean, timeoutMs = 5_000): Promise<SinkMessage> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.messages.find(predicate);
      if (found) return found;
      if (Date.now() > deadline)
        throw new Error(`no matching message within ${timeoutMs} ms (${this.messages.length} recorded)`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }
}
