/**
 * The HTTP transport under the twilio client (adapters/twilio/transport.ts), over real loopback HTTP:
 * its form bodies are byte for byte what twilio's own axios-based client writes (qs, compared on
 * generated inputs), a silent API times out once and is not retried (Twilio may have acted on it),
 * an oversized answer is cut off, and error bodies still become the library's RestException.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import { pino } from 'pino';
import twilio from 'twilio';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createMessagesClient } from '../../adapters/twilio/outbound.js';
import { formEncode, KeepAliveTransport, TransportTimeoutError } from '../../adapters/twilio/transport.js';

// twilio's own form encoder, resolved from the twilio package as its client does.
const qs = createRequire(createRequire(import.meta.url).resolve('twilio'))('qs') as {
  stringify(data: unknown, opts: { arrayFormat: 'repeat' }): string;
};

const logger = pino({ level: 'silent' });
type Handler = (req: IncomingMessage, body: string, res: ServerResponse) => void;

let server: Server;
let url: string;
let handler: Handler;
let hits: number;

beforeAll(async () => {
  server = createServer((req, res) => {
    hits += 1;
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => {
      body += c;
    });
    req.on('end', () => handler(req, body, res));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

beforeEach(() => {
  hits = 0;
});

describe('the twilio transport', () => {
  it("writes form bodies exactly as twilio's own client (qs, repeat arrays) does", () => {
    const value = fc.oneof(fc.string(), fc.string({ unit: 'grapheme' }), fc.integer(), fc.boolean());
    fc.assert(
      fc.property(
        fc.dictionary(fc.string({ minLength: 1 }), fc.oneof(value, fc.array(value, { maxLength: 4 }))),
        (data) => {
          expect(formEncode(data)).toBe(qs.stringify(data, { arrayFormat: 'repeat' }));
        },
      ),
      { numRuns: 500 },
    );
    expect(formEncode({ Body: "it's (50%) *off*!", MediaUrl: ['a b', 'c&d'] })).toBe(
      qs.stringify({ Body: "it's (50%) *off*!", MediaUrl: ['a b', 'c&d'] }, { arrayFormat: 'repeat' }),
    );
  });

  it('sends method, auth, headers and body, and answers with status, text and headers', async () => {
    let seen: { method?: string; auth?: string; type?: string; body?: string } = {};
    handler = (req, body, res) => {
      seen = { method: req.method, auth: req.headers.authorization, type: req.headers['content-type'], body };
      res.writeHead(201, { 'content-type': 'application/json', 'x-seen': 'yes' }).end('{"sid":"SM1"}');
    };
    const transport = new KeepAliveTransport({ timeoutMs: 2_000 });
    try {
      const res = await transport.send({
        method: 'post',
        uri: `${url}/2010-04-01/Accounts/AC1/Messages.json`,
        username: 'AC1',
        password: 'secret',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        data: { To: '+1 415', Body: 'hi & bye' },
        params: { PageSize: 2 },
      });
      expect(res).toMatchObject({ statusCode: 201, body: '{"sid":"SM1"}' });
      expect(res.headers['x-seen']).toBe('yes');
      expect(seen).toEqual({
        method: 'POST',
        auth: `Basic ${Buffer.from('AC1:secret').toString('base64')}`,
        type: 'application/x-www-form-urlencoded',
        body: 'To=%2B1%20415&Body=hi%20%26%20bye',
      });
    } finally {
      transport.close();
    }
  });

  it('gives up on a silent API after the timeout, and the client does not retry it', async () => {
    handler = () => {
      // Never answers.
    };
    const client = createMessagesClient('AC1', 'secret', url, logger, {
      attempts: 4,
      baseMs: 1,
      capMs: 5,
      maxRetryAfterMs: 1_000,
      timeoutMs: 300,
    });
    await expect(
      client.create({ to: '+1', from: '+2', body: 'x', statusCallback: 'https://example.com/s' }),
    ).rejects.toBeInstanceOf(TransportTimeoutError);
    // One attempt: a create that timed out may have been accepted, and a second one would send twice.
    expect(hits).toBe(1);
  });

  it('cuts off an answer larger than any Twilio sends', async () => {
    handler = (_req, _body, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      const chunk = 'x'.repeat(64 * 1024);
      let sent = 0;
      const more = () => {
        while (sent < 40) {
          sent += 1;
          if (!res.write(chunk)) {
            res.once('drain', more);
            return;
          }
        }
        res.end();
      };
      more();
    };
    const transport = new KeepAliveTransport({ timeoutMs: 5_000 });
    try {
      await expect(transport.send({ method: 'get', uri: `${url}/big` })).rejects.toThrow(/larger than/);
    } finally {
      transport.close();
    }
  });

  it("turns an error body into twilio's RestException with the code, and a non-JSON one with the status", async () => {
    const answers = [
      { status: 400, body: '{"code":21211,"message":"Invalid To","status":400}' },
      { status: 404, body: '<html>not found</html>' },
    ];
    handler = (_req, _body, res) => {
      const next = answers.shift()!;
      res.writeHead(next.status, { 'content-type': 'application/json' }).end(next.body);
    };
    const client = createMessagesClient('AC1', 'secret', url, logger);
    const first = await client
      .create({ to: '+1', from: '+2', body: 'x', statusCallback: 'https://example.com/s' })
      .catch((e: unknown) => e);
    expect(first).toBeInstanceOf(twilio.RestException);
    expect(first).toMatchObject({ status: 400, code: 21211, message: 'Invalid To' });
    const second = await client
      .create({ to: '+1', from: '+2', body: 'x', statusCallback: 'https://example.com/s' })
      .catch((e: unknown) => e);
    expect(second).toBeInstanceOf(twilio.RestException);
    expect(second).toMatchObject({ status: 404 });
  });
});
