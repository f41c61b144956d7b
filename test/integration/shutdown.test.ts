/**
 * SIGTERM on a real gateway process (SPEC §4.6, docs/shutdown.md): the shutdown ends within
 * SHUTDOWN_TIMEOUT_MS whatever is open (WebSockets, a half-open upgrade, slow requests), WebSockets get
 * a 1001 close first; and under keep-alive load every request that reaches the server is answered:
 * 503 with `Connection: close` and `Retry-After` during the drain, in-flight requests finish.
 */
import { connect, type Socket } from 'node:net';
import { Pool } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { API_KEY, type SpawnedGateway, spawnGateway } from '../helpers/gateway.js';
import { ChatClient, ORIGIN, until, visitorToken, WEBCHAT_SECRET } from '../helpers/webchat-client.js';

const WEBCHAT = { WEBCHAT_JWT_SECRET: WEBCHAT_SECRET, WEBCHAT_ALLOWED_ORIGINS: ORIGIN };

let gw: SpawnedGateway | undefined;
const sockets: Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  if (gw && gw.proc.exitCode === null && gw.proc.signalCode === null) await gw.kill('SIGKILL');
  gw = undefined;
});

/** The head of the server's close frame: FIN + close, 22 bytes (code 1001 + "server shutting down"). */
const CLOSE_GOING_AWAY = '\x88\x16\x03\xe9';

const portOf = (url: string) => Number(new URL(url).port);

/** A raw TCP connection to the gateway that records what it receives and whether the server closed it. */
function raw(url: string): { socket: Socket; data: () => string; closed: Promise<void> } {
  const socket = connect(portOf(url), '127.0.0.1');
  sockets.push(socket);
  let data = '';
  socket.setEncoding('latin1');
  socket.on('data', (chunk: string) => {
    data += chunk;
  });
  socket.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  return { socket, data: () => data, closed };
}

/** Sends SIGTERM and resolves with the exit code and how long the exit took; SIGKILLs after `capMs`. */
async function terminate(g: SpawnedGateway, capMs: number): Promise<{ code: number | null; ms: number }> {
  const t0 = Date.now();
  const cap = setTimeout(() => g.proc.kill('SIGKILL'), capMs);
  const code = await g.kill('SIGTERM');
  clearTimeout(cap);
  return { code, ms: Date.now() - t0 };
}

describe('SIGTERM is bounded by SHUTDOWN_TIMEOUT_MS', () => {
  it('exits within the bound with open websockets, a half-open upgrade and slow requests', async () => {
    const timeoutMs = 1_500;
    gw = await spawnGateway({ ...WEBCHAT, SHUTDOWN_TIMEOUT_MS: String(timeoutMs) });
    const url = gw.url;

    // Two well-behaved widgets.
    const chats = await Promise.all(
      ['a', 'b'].map((sub) => ChatClient.ready(url, { token: visitorToken({ sub: `visitor-${sub}` }) })),
    );
    // A completed /webchat upgrade whose client then neither reads nor answers the closing handshake.
    const halfOpen = raw(url);
    halfOpen.socket.write(
      'GET /webchat HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n' +
        `Origin: ${ORIGIN}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n` +
        `Sec-WebSocket-Protocol: switchboard.v1, bearer.${visitorToken({ sub: 'visitor-c' })}\r\n\r\n`,
    );
    await until(() => halfOpen.data().startsWith('HTTP/1.1 101'), 5_000, 'the 101 answer');
    halfOpen.socket.pause();
    // An upgrade to a path nobody serves, and a request whose headers never end.
    const unknown = raw(url);
    unknown.socket.write(
      'GET /elsewhere HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n',
    );
    const slowHeaders = raw(url);
    slowHeaders.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n');
    // A request whose body trickles in far slower than the bound.
    const slowBody = raw(url);
    slowBody.socket.write(
      `POST /v1/conversations HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${API_KEY}\r\n` +
        'Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"meta":',
    );
    await new Promise((r) => setTimeout(r, 200));
    const { code, ms } = await terminate(gw, 15_000);
    expect(code).toBe(0);
    // The bound plus a margin for a loaded machine: the exit follows the deadline promptly.
    expect(ms).toBeLessThan(timeoutMs + 2_500);
    for (const chat of chats) expect((await chat.closed).code).toBe(1001);
    // Reading again lets the paused socket see what the server sent and its close.
    halfOpen.socket.resume();
    await Promise.all([halfOpen.closed, unknown.closed, slowHeaders.closed, slowBody.closed]);
    // The half-open socket was sent a proper close frame (1001 going away) before it was destroyed.
    expect(halfOpen.data()).toContain(CLOSE_GOING_AWAY);
    expect(gw.output.join('')).toContain('shutdown complete');
  }, 30_000);

  it('exits at once when nothing is open', async () => {
    gw = await spawnGateway({ ...WEBCHAT, SHUTDOWN_TIMEOUT_MS: '20000' });
    const { code, ms } = await terminate(gw, 15_000);
    expect(code).toBe(0);
    expect(ms).toBeLessThan(2_000);
  });
});

interface Outcome {
  status?: number;
  connection?: string;
  retryAfter?: string;
  contentType?: string;
  error?: string;
  /** The problem+json code of a refused API request. */
  code?: string;
  /** Connections the pool had opened when this answer came. */
  connects: number;
}

describe('SIGTERM under keep-alive load', () => {
  it('answers every request: 503 + Connection: close + Retry-After during the drain, in-flight ones finish', async () => {
    gw = await spawnGateway({ ...WEBCHAT, SHUTDOWN_TIMEOUT_MS: '10000', SHUTDOWN_DRAIN_MS: '3000' });
    const url = gw.url;
    const pool = new Pool(url, { connections: 4, pipelining: 1, keepAliveTimeout: 60_000 });
    let connects = 0;
    pool.on('connect', () => {
      connects += 1;
    });
    const outcomes: Outcome[] = [];
    const get = async (path: string): Promise<Outcome> => {
      try {
        const res = await pool.request({
          path,
          method: 'GET',
          headers: { authorization: `Bearer ${API_KEY}` },
        });
        const body = await res.body.text();
        const h = res.headers;
        const one = (v: string | string[] | undefined) => (Array.isArray(v) ? v.join(',') : v);
        return {
          status: res.statusCode,
          connection: one(h.connection),
          retryAfter: one(h['retry-after']),
          contentType: one(h['content-type']),
          connects,
          ...(res.statusCode === 503 && path.startsWith('/v1') ? { code: JSON.parse(body).code } : {}),
        };
      } catch (err) {
        return { error: (err as { code?: string }).code ?? String(err), connects };
      }
    };

    // Each worker sends back to back; after its first 503 it sends three more (on new connections,
    // the listener still being open during the drain), then stops, as a client honouring it would.
    let stopping = false;
    const worker = async () => {
      let after503 = -1;
      while (after503 < 3) {
        const outcome = await get('/v1/conversations?take=1');
        outcomes.push(outcome);
        if (outcome.error) break;
        if (outcome.status === 503) after503 += 1;
        if (!stopping && outcomes.length > 2_000) break;
      }
    };
    const workers = Array.from({ length: 8 }, () => worker());
    await until(() => outcomes.length >= 40, 10_000, 'warm-up');
    const warmConnects = connects;

    // An in-flight request whose body is still arriving when the signal comes.
    const inFlight = raw(url);
    const body = JSON.stringify({ meta: { note: 'in flight' } });
    inFlight.socket.write(
      `POST /v1/conversations HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${API_KEY}\r\n` +
        `Content-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body.slice(0, 5)}`,
    );
    await new Promise((r) => setTimeout(r, 100));

    stopping = true;
    const before = outcomes.length;
    const exit = terminate(gw, 20_000);
    await new Promise((r) => setTimeout(r, 300));
    inFlight.socket.write(body.slice(5));
    const ready = await get('/readyz');
    const live = await get('/healthz');
    await Promise.all(workers);
    const { code } = await exit;
    await pool.close();

    expect(code).toBe(0);
    // No request went unanswered: no reset, no "other side closed".
    expect(outcomes.filter((o) => o.error)).toEqual([]);
    const during = outcomes.slice(before);
    const refused = during.filter((o) => o.status === 503);
    expect(refused.length).toBeGreaterThanOrEqual(8 * 4);
    for (const o of refused) {
      expect(o).toMatchObject({
        connection: 'close',
        retryAfter: '1',
        contentType: expect.stringMatching(/^application\/problem\+json/),
        code: 'GW_ERR_SHUTTING_DOWN',
      });
    }
    expect(during.every((o) => o.status === 200 || o.status === 503)).toBe(true);
    // The first 503s came on connections kept alive from before the signal.
    expect(refused[0]?.connects).toBe(warmConnects);
    // …and later ones on new connections, accepted while the drain went on.
    expect(refused.at(-1)?.connects).toBeGreaterThan(warmConnects);
    expect(ready).toMatchObject({ status: 503, connection: 'close' });
    expect(live).toMatchObject({ status: 200, connection: 'close' });
    // The request in flight got its real answer.
    await inFlight.closed;
    expect(inFlight.data()).toMatch(/^HTTP\/1\.1 201 /);
    expect(inFlight.data().toLowerCase()).toContain('connection: close');
  }, 40_000);
});
