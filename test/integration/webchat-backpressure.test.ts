/**
 * `resume` under back-pressure (docs/webchat-limits.md): the replay is paged and waits for the socket to
 * drain, a new resume cancels the one still running, and a visitor who stops reading while sending
 * resumes at the allowed rate is closed (1013) with the gateway's buffer for it bounded; a reading
 * client still gets the whole history, in order, across pages.
 */
import type { Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { ChatClient, ORIGIN, until, visitorToken, WEBCHAT_SECRET } from '../helpers/webchat-client.js';

const HIGH_WATER = 65_536;
const PAGE = 10;

let gw: TestGateway;
/** Server-side sockets of the web-chat upgrades, in order. */
const upgraded: Socket[] = [];
beforeAll(async () => {
  gw = await startGateway({
    WEBCHAT_JWT_SECRET: WEBCHAT_SECRET,
    WEBCHAT_ALLOWED_ORIGINS: ORIGIN,
    WEBCHAT_REPLAY_PAGE: String(PAGE),
    WEBCHAT_SEND_BUFFER_BYTES: String(HIGH_WATER),
    WEBCHAT_SLOW_SOCKET_S: '1',
  });
  gw.gateway.server.on('upgrade', (_req, socket: Socket) => upgraded.push(socket));
});
afterAll(() => gw.stop());

let visitors = 0;
async function visitorWithHistory(
  count: number,
  bytes: number,
): Promise<{ sub: string; conversationId: string }> {
  const sub = `bp-visitor-${++visitors}-${Date.now()}`;
  const first = await ChatClient.ready(gw.url, { token: visitorToken({ sub }) });
  const conversationId = first.frames[0]!.conversationId as string;
  await first.end();
  for (let i = 1; i <= count; i++) {
    const text = `${String(i).padStart(4, '0')} ${'x'.repeat(bytes)}`;
    const res = await gw.api(`/v1/conversations/${conversationId}/messages`, {
      method: 'POST',
      json: { type: 'user', text },
    });
    expect(res.status).toBe(201);
  }
  return { sub, conversationId };
}

describe('web-chat resume under back-pressure', () => {
  it('replays the whole history in order across pages, live messages included once', async () => {
    const { sub } = await visitorWithHistory(95, 200);
    const client = await ChatClient.ready(gw.url, { token: visitorToken({ sub }) });
    const from = client.frames.length;
    client.send({ type: 'resume', afterSeq: 0 });
    const ack = await client.say('live during the replay');
    const seqs = () => client.find((f) => f.type === 'message' && f.message.type === 'user', from);
    await until(() => seqs().length >= 96, 10_000, 'the whole history');
    await new Promise((r) => setTimeout(r, 200));
    expect(seqs().map((f) => f.message.seq)).toEqual(Array.from({ length: 96 }, (_, i) => i + 1));
    expect(ack.seq).toBe(96);
    await client.end();
  });

  it('a new resume cancels the pages the previous one has not sent', async () => {
    const { sub } = await visitorWithHistory(100, 9_900);
    const client = await ChatClient.ready(gw.url, { token: visitorToken({ sub }) });
    const server = upgraded.at(-1)!;
    // Stop reading and ask for the whole history until the socket's buffer is over the mark (the
    // kernel's buffers take the first replays whole); the last of these replays is then stalled.
    client.ws.pause();
    let full = 0;
    while (server.writableLength <= HIGH_WATER && full < 10) {
      client.send({ type: 'resume', afterSeq: 0 });
      full += 1;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(server.writableLength).toBeGreaterThan(HIGH_WATER);
    client.send({ type: 'resume', afterSeq: 95 });
    await new Promise((r) => setTimeout(r, 100));
    client.ws.resume();
    const seqs = () => client.find((f) => f.type === 'message').map((f) => f.message.seq as number);
    let seen = -1;
    await until(
      async () => {
        const now = seqs().length;
        if (now === seen) return true;
        seen = now;
        await new Promise((r) => setTimeout(r, 400));
        return false;
      },
      10_000,
      'the replays to end',
    );
    const all = seqs();
    // The last resume went to the end; at least one of the full ones stopped where it stalled.
    expect(all.slice(-5)).toEqual([96, 97, 98, 99, 100]);
    expect(all.filter((s) => s === 100).length).toBeLessThan(full + 1);
    expect(client.close).toBeNull();
    await client.end();
  });

  it('closes a socket that stops reading while sending resumes, its buffer bounded meanwhile', async () => {
    const { sub } = await visitorWithHistory(100, 8_000);
    const client = await ChatClient.ready(gw.url, { token: visitorToken({ sub }) });
    const server = upgraded.at(-1)!;
    let closedAt = 0;
    server.once('close', () => {
      closedAt = Date.now();
    });
    client.ws.pause();
    let maxBuffered = 0;
    const sampler = setInterval(() => {
      maxBuffered = Math.max(maxBuffered, server.writableLength);
    }, 5);
    const started = Date.now();
    // At the allowed frame rate (5 per second), for up to 15 s or until the gateway closes the socket.
    while (!closedAt && Date.now() - started < 15_000) {
      if (client.ws.readyState === client.ws.OPEN) client.send({ type: 'resume', afterSeq: 0 });
      await new Promise((r) => setTimeout(r, 200));
    }
    clearInterval(sampler);
    client.ws.terminate();
    expect(closedAt).toBeGreaterThan(0);
    // At most the hard limit (4x the mark) plus the page being written.
    expect(maxBuffered).toBeLessThan(4 * HIGH_WATER + PAGE * 8_200);
    expect(gw.logs.lines.find((l) => l.reason === 'slow_consumer')).toBeTruthy();
    // Everyone else is still served.
    const other = await ChatClient.ready(gw.url, { token: visitorToken({ sub: `${sub}-other` }) });
    await other.end();
  }, 30_000);
});
