/**
 * The web-chat socket cap per client address (WEBCHAT_MAX_SOCKETS_PER_IP, docs/webchat-limits.md):
 * direct clients are counted by their TCP peer address, clients behind a trusted proxy
 * (TRUSTED_PROXIES) by the address it forwards, and an untrusted peer's X-Forwarded-For is ignored.
 */

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { ORIGIN, visitorToken, WEBCHAT_SECRET } from '../helpers/webchat-client.js';

const CAP = 3;
const base = {
  WEBCHAT_JWT_SECRET: WEBCHAT_SECRET,
  WEBCHAT_ALLOWED_ORIGINS: ORIGIN,
  WEBCHAT_MAX_SOCKETS_PER_IP: String(CAP),
};

let direct: TestGateway;
let proxied: TestGateway;
let untrusted: TestGateway;
beforeAll(async () => {
  [direct, proxied, untrusted] = await Promise.all([
    startGateway(base),
    startGateway({ ...base, TRUSTED_PROXIES: '127.0.0.1/32,::1' }),
    startGateway({ ...base, TRUSTED_PROXIES: '10.9.9.9/32' }),
  ]);
});
afterAll(() => Promise.all([direct, proxied, untrusted].map((g) => g?.stop())));

const open: WebSocket[] = [];
afterEach(async () => {
  await Promise.all(
    open.splice(0).map(
      (ws) =>
        new Promise<void>((resolve) => {
          if (ws.readyState === WebSocket.CLOSED) return resolve();
          ws.once('close', () => resolve());
          ws.terminate();
        }),
    ),
  );
});

let visitors = 0;
/** Opens a socket (a fresh visitor each time); resolves with `ready` or the HTTP status it was refused with. */
function connect(
  gw: TestGateway,
  opts: { localAddress?: string; forwardedFor?: string } = {},
): Promise<{ ws: WebSocket; ready: boolean; status?: number }> {
  const ws = new WebSocket(
    `${gw.url.replace(/^http/, 'ws')}/webchat`,
    ['switchboard.v1', `bearer.${visitorToken({ sub: `ip-visitor-${++visitors}` })}`],
    {
      origin: ORIGIN,
      ...(opts.localAddress ? { localAddress: opts.localAddress } : {}),
      ...(opts.forwardedFor ? { headers: { 'X-Forwarded-For': opts.forwardedFor } } : {}),
    },
  );
  open.push(ws);
  return new Promise((resolve) => {
    ws.on('message', (data) => {
      if (JSON.parse(data.toString()).type === 'ready') resolve({ ws, ready: true });
    });
    ws.on('unexpected-response', (_req, res) => {
      res.resume();
      resolve({ ws, ready: false, status: res.statusCode });
      ws.terminate();
    });
    ws.on('error', () => undefined);
    ws.on('close', () => resolve({ ws, ready: false }));
  });
}

async function connectMany(gw: TestGateway, n: number, opts: Parameters<typeof connect>[1] = {}) {
  const out = [];
  for (let i = 0; i < n; i++) out.push(await connect(gw, opts));
  return out;
}

describe('web-chat sockets per client address', () => {
  it('caps direct clients by their address, each address on its own', async () => {
    const first = await connectMany(direct, CAP, { localAddress: '127.0.0.1' });
    expect(first.every((c) => c.ready)).toBe(true);
    const over = await connect(direct, { localAddress: '127.0.0.1' });
    expect(over).toMatchObject({ ready: false, status: 429 });
    // Another address is not affected.
    const other = await connectMany(direct, CAP, { localAddress: '127.0.0.2' });
    expect(other.every((c) => c.ready)).toBe(true);
    // A closed socket frees its place.
    const closed = new Promise((resolve) => first[0]!.ws.once('close', resolve));
    first[0]!.ws.close();
    await closed;
    await expect
      .poll(async () => (await connect(direct, { localAddress: '127.0.0.1' })).ready, { timeout: 3_000 })
      .toBe(true);
    expect(direct.logs.lines.filter((l) => l.reason === 'too_many_sockets_ip').length).toBeGreaterThan(0);
  });

  it('counts clients behind a trusted proxy by the address it forwards', async () => {
    const addresses = Array.from({ length: 20 }, (_, i) => `198.51.100.${i + 1}`);
    for (const address of addresses) {
      const sockets = await connectMany(proxied, CAP, { forwardedFor: address });
      expect(sockets.every((c) => c.ready)).toBe(true);
    }
    // 60 sockets from one peer, all accepted; a fourth for one forwarded address is not.
    expect(await connect(proxied, { forwardedFor: addresses[0]! })).toMatchObject({
      ready: false,
      status: 429,
    });
    // The client's own entries left of what the proxy appended change nothing.
    expect(await connect(proxied, { forwardedFor: `6.6.6.6, ${addresses[1]}` })).toMatchObject({
      ready: false,
      status: 429,
    });
    expect((await connect(proxied, { forwardedFor: `${addresses[1]}, 203.0.113.77` })).ready).toBe(true);
  });

  it("ignores an untrusted peer's X-Forwarded-For", async () => {
    const sockets = await Promise.all(
      Array.from({ length: CAP }, (_, i) => connect(untrusted, { forwardedFor: `198.51.100.${i + 1}` })),
    );
    expect(sockets.every((c) => c.ready)).toBe(true);
    expect(await connect(untrusted, { forwardedFor: '198.51.100.200' })).toMatchObject({
      ready: false,
      status: 429,
    });
  });
});
