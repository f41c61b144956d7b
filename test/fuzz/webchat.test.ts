/**
 * Fuzzing the web-chat socket over a real WebSocket: random frames (well-formed and not, text and
 * binary, before and after authentication) from visitors with valid tokens. Whatever arrives, the
 * gateway never answers `internal`, logs nothing at error level, and still serves a new visitor.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_KEY, startGateway, type TestGateway } from '../helpers/gateway.js';
import { ChatClient, ORIGIN, visitorToken, WEBCHAT_SECRET } from '../helpers/webchat-client.js';
import { errorLines, expectHealthy, fuzzParams } from './harness.js';

let gw: TestGateway;
const clients: ChatClient[] = [];

beforeAll(async () => {
  gw = await startGateway({
    WEBCHAT_JWT_SECRET: WEBCHAT_SECRET,
    WEBCHAT_ALLOWED_ORIGINS: ORIGIN,
    // Room for many frames a second, so the fuzzing reaches the frame handlers, not only the rate limit.
    WEBCHAT_MAX_MSGS_PER_S: '500',
    WEBCHAT_MAX_FRAME_BYTES: '4096',
  });
});
afterAll(async () => {
  for (const client of clients) await client.end().catch(() => undefined);
  await gw?.stop();
});

const text = fc.oneof(
  fc.string({ maxLength: 30 }),
  fc.string({ unit: 'grapheme', maxLength: 30 }),
  fc.string({ unit: 'binary', maxLength: 30 }),
  fc.constantFrom('', ' ', '\u0000', '\u202e', '__proto__', 'hello'),
);
const anyValue = fc.oneof(text, fc.jsonValue({ maxDepth: 2 }), fc.integer(), fc.double(), fc.constant(null));

/** Frames shaped like the protocol's, with fields of the right and the wrong type. */
const structured = fc
  .record(
    {
      type: fc.oneof(
        fc.constantFrom('auth', 'message', 'typing', 'read', 'resume', 'ping', 'ready', 'ack'),
        text,
      ),
      clientMessageId: fc.oneof(fc.stringMatching(/^[A-Za-z0-9._:-]{1,12}$/), anyValue),
      text: fc.oneof(text, anyValue),
      payload: fc.oneof(text, anyValue),
      on: fc.oneof(fc.boolean(), anyValue),
      seq: fc.oneof(
        fc.integer({ min: -2, max: 50 }),
        fc.constantFrom(Number.MAX_SAFE_INTEGER, 1e308),
        anyValue,
      ),
      afterSeq: fc.oneof(
        fc.integer({ min: -2, max: 50 }),
        fc.constantFrom(Number.MAX_SAFE_INTEGER),
        anyValue,
      ),
      token: fc.oneof(
        fc.constant(null).map(() => visitorToken({ sub: 'fuzz-visitor' })),
        fc.constant(null).map(() => visitorToken({ sub: 'fuzz-other' })),
        fc.constant(null).map(() => visitorToken({ sub: 'fuzz-visitor', exp: 1 })),
        fc
          .constant(null)
          .map(() => visitorToken({ sub: 'fuzz-visitor' }, 'another-secret-0123456789-abcdefghijkl')),
        text,
      ),
    },
    { requiredKeys: ['type'] },
  )
  .map((frame) => JSON.stringify(frame));

const frame: fc.Arbitrary<string | Buffer> = fc.oneof(
  { weight: 6, arbitrary: structured },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)) },
  { weight: 1, arbitrary: text },
  { weight: 1, arbitrary: fc.integer({ min: 1, max: 5000 }).map((n) => `${'['.repeat(n)}${']'.repeat(n)}`) },
  {
    weight: 1,
    arbitrary: fc
      .integer({ min: 3000, max: 6000 })
      .map((n) => JSON.stringify({ type: 'message', clientMessageId: 'big', text: 'x'.repeat(n) })),
  },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a)) },
);

/** A visitor's session: authenticated by subprotocol, by an `auth` frame, or not at all. */
const run = fc.record({
  login: fc.constantFrom('subprotocol', 'frame', 'none'),
  reuse: fc.boolean(),
  frames: fc.array(frame, { minLength: 1, maxLength: 6 }),
});

let current: ChatClient | undefined;
let visitors = 0;

/** A socket for a new visitor (one each, so the per-visitor socket cap is not what is tested). */
async function open(login: string): Promise<ChatClient> {
  await current?.end().catch(() => undefined);
  const token = visitorToken({ sub: `fuzz-visitor-${++visitors}` });
  const client = login === 'subprotocol' ? await ChatClient.ready(gw.url, { token }) : new ChatClient(gw.url);
  clients.push(client);
  if (login !== 'subprotocol') {
    await client.opened;
    if (login === 'frame') {
      client.send({ type: 'auth', token });
      await client.next('ready');
    }
  }
  return client;
}

describe('fuzz: web-chat frames', () => {
  it('never fails internally, whatever the frames', async () => {
    await fc.assert(
      fc.asyncProperty(run, async ({ login, reuse, frames }) => {
        if (!reuse || !current || current.close) current = await open(login);
        const client = current;
        for (const f of frames) {
          if (client.close) break;
          client.ws.send(f);
        }
        // Let the server work through the batch before looking.
        await new Promise((r) => setTimeout(r, 5));
        const internal = client.frames.filter((f) => f.type === 'error' && f.code === 'internal');
        if (internal.length > 0)
          throw new Error(`internal error after ${JSON.stringify(frames).slice(0, 500)}`);
        if (client.close && client.close.code === 1011)
          throw new Error(`closed 1011 after ${JSON.stringify(frames).slice(0, 500)}`);
      }),
      fuzzParams(0x3eb),
    );
    await new Promise((r) => setTimeout(r, 200));
    expect(errorLines(gw.logs)).toEqual([]);
    // The fuzzing got past authentication and validation: some messages were taken.
    const acks = clients.flatMap((c) => c.frames).filter((f) => f.type === 'ack');
    expect(acks.length).toBeGreaterThan(0);
  });

  it('still serves a new visitor, and the HTTP side is healthy', async () => {
    const client = await ChatClient.ready(gw.url, { token: visitorToken({ sub: 'fuzz-after' }) });
    clients.push(client);
    await client.say('hello');
    await client.botSays('You said: hello');
    await expectHealthy(gw.url, API_KEY);
    expect(errorLines(gw.logs)).toEqual([]);
  });
});
