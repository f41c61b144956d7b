/**
 * Upgrade requests nobody serves: every WebSocket (or other) upgrade to a path other than `/webchat`
 * is answered (404, or 400 when it is not a well-formed WebSocket handshake) and its socket closed by
 * the gateway, so a flood of them cannot pile up descriptors; `/healthz` keeps answering.
 */
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { until } from '../helpers/webchat-client.js';

let gw: TestGateway;
beforeAll(async () => {
  gw = await startGateway();
});
afterAll(() => gw.stop());

interface RawAnswer {
  /** The status line, or null when the server closed without answering. */
  status: number | null;
  /** True when the server ended the connection (the client never closed it). */
  closedByServer: boolean;
}

/** Sends one raw request and waits until the server closes the connection (or `timeoutMs` passes). */
function rawRequest(port: number, request: string, timeoutMs = 3_000): Promise<RawAnswer> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let data = '';
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ status: status(), closedByServer: false });
    }, timeoutMs);
    const status = () => {
      const m = /^HTTP\/1\.1 (\d{3})/.exec(data);
      return m ? Number(m[1]) : null;
    };
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      data += chunk;
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ status: status(), closedByServer: true });
    });
    socket.write(request);
  });
}

const port = () => Number(new URL(gw.url).port);

function upgrade(path: string, headers: Record<string, string> = {}): string {
  const all: Record<string, string> = {
    Host: `127.0.0.1:${port()}`,
    Connection: 'Upgrade',
    Upgrade: 'websocket',
    'Sec-WebSocket-Version': '13',
    'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==',
    ...headers,
  };
  const lines = Object.entries(all)
    .filter(([, v]) => v !== '')
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('');
  return `GET ${path} HTTP/1.1\r\n${lines}\r\n`;
}

describe('upgrade requests to unknown paths', () => {
  it('answers a WebSocket upgrade to an unknown path with 404 and closes the socket', async () => {
    for (const path of ['/nope', '/healthz', '/webchat/extra', '/v1/conversations']) {
      expect(await rawRequest(port(), upgrade(path))).toEqual({ status: 404, closedByServer: true });
    }
  });

  it('answers a malformed upgrade with 400 and closes the socket', async () => {
    const bad = [
      upgrade('/nope', { Upgrade: 'h2c' }),
      upgrade('/nope', { 'Sec-WebSocket-Key': '' }),
      upgrade('/nope', { 'Sec-WebSocket-Version': '7' }),
      upgrade('/nope').replace(/^GET/, 'POST'),
    ];
    for (const request of bad) {
      expect(await rawRequest(port(), request)).toEqual({ status: 400, closedByServer: true });
    }
  });

  it('survives a flood of bogus upgrades: each answered and closed, /healthz still answering', async () => {
    const n = 1_200;
    const answers: RawAnswer[] = [];
    // In waves, so the test itself stays well inside the descriptor limit of the test process.
    for (let i = 0; i < n; i += 200) {
      answers.push(
        ...(await Promise.all(
          Array.from({ length: 200 }, (_, j) => rawRequest(port(), upgrade(`/bogus-${i + j}`))),
        )),
      );
    }
    expect(answers.filter((a) => a.status === 404 && a.closedByServer)).toHaveLength(n);
    const health = await rawRequest(
      port(),
      `GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`,
    );
    expect(health).toEqual({ status: 200, closedByServer: true });
    // Nothing left open on the server's side.
    await until(
      () =>
        new Promise<boolean>((resolve) =>
          gw.gateway.server.getConnections((_err, count) => resolve(count === 0)),
        ),
      3_000,
      'no connections left',
    );
  });

  it('still upgrades /webchat', async () => {
    const answer = await rawRequest(port(), upgrade('/webchat', { Origin: gw.url }), 500);
    expect(answer.status).toBe(101);
  });
});
