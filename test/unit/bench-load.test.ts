/**
 * The bench's out-of-process load generator (bench/lib.ts `load()`, wrk with bench/wrk-requests.lua):
 * every request it builds reaches the server once (twice with `twice`), never more, also when the
 * built requests run out before the duration does; and the reply counting of the fake.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import twilio from 'twilio';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { replyStats } from '../../bench/fake-twilio.js';
import { sendOrder, writeRequests } from '../../bench/lib.js';
import { AUTH_TOKEN } from '../fakes/twilio-api.js';

const hasWrk = (() => {
  try {
    execFileSync('wrk', ['-v'], { stdio: 'ignore' });
    return true;
  } catch (err) {
    // wrk -v prints its usage and exits 1; only a missing binary is ENOENT.
    return (err as NodeJS.ErrnoException).code !== 'ENOENT';
  }
})();

describe('sendOrder', () => {
  it('sends each request once, in order', () => {
    expect(sendOrder(5, false, 2)).toEqual([0, 1, 2, 3, 4]);
  });

  it('with twice, sends each request twice, the copy one window later', () => {
    expect(sendOrder(5, true, 2)).toEqual([0, 1, 0, 1, 2, 3, 2, 3, 4, 4]);
  });
});

describe('writeRequests', () => {
  it('writes every request whole behind its length, also past the stream buffer filling up', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bench-requests-'));
    try {
      const file = join(dir, 'requests');
      let n = 0;
      const count = 20_000;
      await writeRequests(
        file,
        {
          url: 'http://127.0.0.1:1/in',
          headers: { 'content-type': 'application/json' },
          request: () => ({ body: JSON.stringify({ n: n++, text: 'é'.repeat(n % 97) }) }),
          connections: 10,
        },
        count,
      );
      // Read it back as the wrk script does: a length line, then that many bytes.
      const data = readFileSync(file);
      const seen: number[] = [];
      let at = 0;
      while (at < data.length) {
        const eol = data.indexOf(0x0a, at);
        const len = Number(data.subarray(at, eol).toString('latin1'));
        expect(Number.isInteger(len) && len > 0).toBe(true);
        const raw = data.subarray(eol + 1, eol + 1 + len).toString('utf8');
        expect(raw.startsWith('POST /in HTTP/1.1\r\n')).toBe(true);
        seen.push((JSON.parse(raw.slice(raw.indexOf('\r\n\r\n') + 4)) as { n: number }).n);
        at = eol + 1 + len;
      }
      expect(seen).toEqual(Array.from({ length: count }, (_, i) => i));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('replyStats', () => {
  it('tells repeated replies (same recipient and text) from distinct ones', () => {
    const stats = replyStats([
      { fields: { To: '+1', Body: 'a' }, at: 20 },
      { fields: { To: '+1', Body: 'a' }, at: 30 },
      { fields: { To: '+2', Body: 'a' }, at: 10 },
      { fields: { To: '+1', Body: 'b' }, at: 25 },
    ]);
    expect(stats).toEqual({ replies: 4, distinct: 3, duplicates: 1, firstAt: 10, lastAt: 30 });
  });
});

describe.skipIf(!hasWrk)('load() with wrk in its own process', () => {
  let server: Server;
  let url: string;
  /** MessageSid → times received, and how many arrived with a bad signature. */
  let seen: Map<string, number>;
  let badSignatures: number;

  beforeEach(async () => {
    seen = new Map();
    badSignatures = 0;
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const params = Object.fromEntries(new URLSearchParams(Buffer.concat(chunks).toString()));
        const signature = String(req.headers['x-twilio-signature'] ?? '');
        if (
          !twilio.validateRequest(AUTH_TOKEN, signature, 'https://chat.example.com/webhooks/twilio', params)
        ) {
          badSignatures += 1;
        }
        const sid = params.MessageSid ?? '';
        seen.set(sid, (seen.get(sid) ?? 0) + 1);
        res.writeHead(200).end('ok');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/webhooks/twilio`;
  });

  afterEach(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    vi.unstubAllEnvs();
    vi.resetModules();
  });

  /** The bench's modules, fresh, with `budget` requests a second built per load. */
  async function bench(budget: number) {
    vi.stubEnv('BENCH_LOAD_BUDGET', String(budget));
    vi.resetModules();
    const lib = await import('../../bench/lib.js');
    const twilioScenario = await import('../../bench/scenarios/twilio.js');
    return {
      load: lib.load,
      webhookRequests: twilioScenario.webhookRequests,
      HEADERS: twilioScenario.HEADERS,
    };
  }

  it('sends every signed request at most once; when they run out it stops and says so', async () => {
    const { load, webhookRequests, HEADERS } = await bench(300);
    const result = await load({
      url,
      headers: HEADERS,
      request: webhookRequests(),
      connections: 10,
      durationS: 1,
    });
    // 300 requests are sent in far less than a second: the file runs out and wrk stops there.
    expect(result.exhausted).toBe(true);
    expect([...seen.values()].every((n) => n === 1)).toBe(true);
    // wrk closes its connections when it stops: a request still in flight then may be lost, but
    // every request it counts as answered reached the server.
    expect(seen.size).toBeGreaterThanOrEqual(300 - 10);
    expect(seen.size).toBeLessThanOrEqual(300);
    expect(result.total).toBeLessThanOrEqual(seen.size);
    expect(result.total).toBeGreaterThanOrEqual(300 - 10);
    expect(badSignatures).toBe(0);
    expect(result.errors + result.non2xx).toBe(0);
    expect(result.startedAt).toBeGreaterThan(Date.now() - 60_000);
  });

  it('with twice, sends every request exactly twice', async () => {
    const { load, webhookRequests, HEADERS } = await bench(400);
    const result = await load({
      url,
      headers: HEADERS,
      request: webhookRequests(),
      connections: 10,
      durationS: 1,
      twice: true,
    });
    expect(result.exhausted).toBe(true);
    expect(seen.size).toBe(200);
    const times = [...seen.values()];
    // All but the last window's copies (those may still be in flight when wrk stops) arrive twice.
    expect(times.every((n) => n <= 2)).toBe(true);
    expect(times.filter((n) => n === 2).length).toBeGreaterThanOrEqual(200 - 10);
    expect(badSignatures).toBe(0);
  });
});
