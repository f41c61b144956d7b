/** The Slack adapter's plain body reader: which requests it reads, and what it gives back. */
import { createServer, type IncomingMessage, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { readPlainBody } from '../../adapters/slack/body.js';

type Outcome = { read: false } | { read: true; body?: string; error?: string };

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(closers.splice(0).map((c) => c()));
});

/** A server that tries the reader on each request and hands the outcome to the test. */
async function server(limit: number) {
  const outcomes: Outcome[] = [];
  let notify: (() => void) | undefined;
  const s = createServer((req: IncomingMessage, res) => {
    const read = readPlainBody(req, limit);
    const done = (o: Outcome) => {
      outcomes.push(o);
      notify?.();
      res.end();
    };
    if (!read) {
      req.resume();
      req.on('end', () => done({ read: false }));
      return;
    }
    read.then(
      (b) => done({ read: true, body: b.toString('utf8') }),
      (err: Error) => done({ read: true, error: err.message }),
    );
  });
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  closers.push(() => new Promise((resolve) => s.close(() => resolve())));
  const port = (s.address() as AddressInfo).port;
  const next = () =>
    new Promise<Outcome>((resolve) => {
      const take = () => {
        const o = outcomes.shift();
        if (o) {
          notify = undefined;
          resolve(o);
        }
      };
      notify = take;
      take();
    });
  const send = (headers: Record<string, string>, chunks: string[]) =>
    new Promise<void>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, method: 'POST', path: '/', headers }, (res) => {
        res.resume();
        res.on('end', () => resolve());
      });
      req.on('error', reject);
      for (const c of chunks) req.write(c);
      req.end();
    });
  return { port, next, send };
}

describe('readPlainBody', () => {
  it('reads a body of a declared length exactly, in one piece or several', async () => {
    const s = await server(1024);
    await s.send({ 'content-length': '11' }, ['hello', ' ', 'world']);
    expect(await s.next()).toEqual({ read: true, body: 'hello world' });
    await s.send({ 'content-length': '0' }, []);
    expect(await s.next()).toEqual({ read: true, body: '' });
    await s.send({ 'content-length': '5', 'content-encoding': 'Identity' }, ['plain']);
    expect(await s.next()).toEqual({ read: true, body: 'plain' });
  });

  it('leaves chunked, encoded and over-limit bodies to the general reader, unread', async () => {
    const s = await server(8);
    await s.send({ 'transfer-encoding': 'chunked' }, ['a', 'b']);
    expect(await s.next()).toEqual({ read: false });
    await s.send({ 'content-length': '4', 'content-encoding': 'gzip' }, ['abcd']);
    expect(await s.next()).toEqual({ read: false });
    await s.send({ 'content-length': '9' }, ['123456789']);
    expect(await s.next()).toEqual({ read: false });
    // The limit itself is still read.
    await s.send({ 'content-length': '8' }, ['12345678']);
    expect(await s.next()).toEqual({ read: true, body: '12345678' });
  });

  it('fails a request that ends before its declared length', async () => {
    const s = await server(1024);
    const socket = connect(s.port, '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.write('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc');
    await new Promise((resolve) => setTimeout(resolve, 50));
    socket.destroy();
    const outcome = await s.next();
    expect(outcome.read).toBe(true);
    expect(outcome).toHaveProperty('error');
  });
});
