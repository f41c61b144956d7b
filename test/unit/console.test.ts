/**
 * The console's building blocks without a server: sessions (random ids, stored under their hash,
 * idle expiry pushed back at most once a minute), the live feed (a notice per domain event with no
 * content, published without holding up the emitter, and nothing thrown when the bus is down), the
 * sign-in check over `API_KEYS`, the page's answer when the bundle is missing, and the operations
 * snapshot's depth, lag and bot health.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import express from 'express';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { apiKeysAuthenticate, CONSOLE_SCOPE } from '../../src/console/auth.js';
import { ConsoleFeed, FEED_TOPIC, type Notice } from '../../src/console/feed.js';
import { operations } from '../../src/console/operations.js';
import { pageRoutes } from '../../src/console/page.js';
import { ConsoleSessions, sameToken } from '../../src/console/sessions.js';
import { EventHub } from '../../src/core/events.js';
import type { Conversation, Message } from '../../src/core/model.js';
import type { Bus } from '../../src/core/store.js';
import { MemoryBus, MemoryKeyValue } from '../../src/store/memory.js';

const logger = pino({ level: 'silent' });

describe('ConsoleSessions', () => {
  it('keeps sessions under the hash of their id, never the id itself', async () => {
    const memory = new MemoryKeyValue();
    const written: string[] = [];
    const kv = {
      get: memory.get.bind(memory),
      delete: memory.delete.bind(memory),
      setIfAbsent: memory.setIfAbsent.bind(memory),
      set: async (key: string, value: string, ttlS?: number) => {
        written.push(key, value);
        await memory.set(key, value, ttlS);
      },
    };
    const sessions = new ConsoleSessions(kv);
    const { id, session } = await sessions.create('Ada', { name: 'API key', scopes: ['console'] });
    expect(id).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(session.csrf).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(session.csrf).not.toBe(id);
    expect(written.join(' ')).not.toContain(id);
    expect(await sessions.get(id)).toMatchObject({ agent: 'Ada', keyName: 'API key', scopes: ['console'] });
    expect(await sessions.get(`${id}x`)).toBeUndefined();
    await sessions.delete(id);
    expect(await sessions.get(id)).toBeUndefined();
  });

  it('pushes the idle expiry back on use, at most once a minute', async () => {
    let now = 1_000_000;
    const sets: number[] = [];
    const values = new Map<string, string>();
    const kv = {
      get: async (key: string) => values.get(key) ?? null,
      set: async (key: string, value: string, ttlS?: number) => {
        sets.push(ttlS ?? -1);
        values.set(key, value);
      },
      setIfAbsent: async () => true,
      delete: async (key: string) => void values.delete(key),
    };
    const sessions = new ConsoleSessions(kv, { idleS: 3600, now: () => now });
    const { id } = await sessions.create('Ada', { name: 'k', scopes: ['console'] });
    expect(sets).toEqual([3600]);
    now += 30_000;
    await sessions.get(id);
    expect(sets).toHaveLength(1);
    now += 31_000;
    await sessions.get(id);
    expect(sets).toEqual([3600, 3600]);
  });

  it('compares tokens in constant time whatever their lengths', () => {
    expect(sameToken('abc', 'abc')).toBe(true);
    expect(sameToken('abc', 'abcd')).toBe(false);
    expect(sameToken('', 'x')).toBe(false);
  });
});

describe('ConsoleFeed', () => {
  let feed: ConsoleFeed | undefined;
  afterEach(() => feed?.close());

  const conversation = { id: 'conv_1' } as Conversation;
  const message = { id: 'msg_1', text: 'secret order details' } as Message;

  it('publishes a notice per event, naming what changed and carrying no content', async () => {
    const events = new EventHub(() => {});
    feed = new ConsoleFeed({ bus: new MemoryBus(), events, logger });
    const heard: Notice[] = [];
    const off = await feed.listen((n) => heard.push(n));
    await events.emit({ type: 'message.created', conversationId: 'conv_1', seq: 3, conversation, message });
    await events.emit({
      type: 'conversation.updated',
      conversationId: 'conv_1',
      seq: 3,
      changes: ['status'],
    });
    await new Promise((r) => setTimeout(r, 10));
    expect(heard.map((n) => n.type)).toEqual(['message.created', 'conversation.updated']);
    expect(heard[0]).toMatchObject({ conversationId: 'conv_1', seq: 3, messageId: 'msg_1' });
    expect(JSON.stringify(heard)).not.toContain('secret order details');
    expect(heard[1]!.changes).toEqual(['status']);
    off();
    await events.emit({ type: 'conversation.deleted', conversationId: 'conv_1', seq: 3 });
    await new Promise((r) => setTimeout(r, 10));
    expect(heard).toHaveLength(2);
  });

  it('sends the notices of one turn as one bus message, heard one by one in order', async () => {
    const payloads: string[] = [];
    const inner = new MemoryBus();
    const bus: Bus = {
      publish: (topic, payload) => {
        payloads.push(payload);
        return inner.publish(topic, payload);
      },
      subscribe: (topic, handler) => inner.subscribe(topic, handler),
    };
    const events = new EventHub(() => {});
    feed = new ConsoleFeed({ bus, events, logger });
    const heard: Notice[] = [];
    await feed.listen((n) => heard.push(n));
    await Promise.all(
      [1, 2, 3].map((seq) =>
        events.emit({ type: 'message.created', conversationId: `conv_${seq}`, seq, conversation, message }),
      ),
    );
    await new Promise((r) => setTimeout(r, 10));
    expect(payloads).toHaveLength(1);
    expect(heard.map((n) => n.conversationId)).toEqual(['conv_1', 'conv_2', 'conv_3']);
    // A lone notice goes out as the object itself, as a process of the previous release sends it.
    await events.emit({ type: 'conversation.deleted', conversationId: 'conv_9', seq: 1 });
    await new Promise((r) => setTimeout(r, 10));
    expect(payloads).toHaveLength(2);
    expect(JSON.parse(payloads[1]!)).toMatchObject({
      type: 'conversation.deleted',
      conversationId: 'conv_9',
    });
    expect(heard.at(-1)?.conversationId).toBe('conv_9');
  });

  it('neither throws into nor waits for the emitter when the bus is down', async () => {
    const published: string[] = [];
    const bus: Bus = {
      publish: (topic) => {
        published.push(topic);
        return new Promise((_resolve, reject) => setTimeout(() => reject(new Error('bus down')), 50));
      },
      subscribe: async () => async () => {},
    };
    const failures: unknown[] = [];
    const events = new EventHub((err) => failures.push(err));
    feed = new ConsoleFeed({ bus, events, logger });
    const started = Date.now();
    await events.emit({ type: 'conversation.created', conversationId: 'conv_1', seq: 0, conversation });
    expect(Date.now() - started).toBeLessThan(40);
    await new Promise((r) => setImmediate(r));
    expect(published).toEqual([FEED_TOPIC]);
    await new Promise((r) => setTimeout(r, 80));
    expect(failures).toEqual([]);
  });
});

describe('apiKeysAuthenticate', () => {
  it('gives every configured key the console scope, and nothing to any other token', async () => {
    const authenticate = apiKeysAuthenticate(['first-key-0123456789', 'second-key-0123456789']);
    expect((await authenticate('second-key-0123456789'))?.scopes.has(CONSOLE_SCOPE)).toBe(true);
    expect(await authenticate('second-key-012345678')).toBeUndefined();
    expect(await authenticate('')).toBeUndefined();
  });
});

describe('the page without a build', () => {
  it('answers 503 with a page that says how to build it, under the CSP', async () => {
    const app = express();
    const router = express.Router();
    pageRoutes(router, () => mkdtempSync(join(tmpdir(), 'console-empty-')));
    app.use('/console', router);
    const server = app.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    try {
      const { port } = server.address() as { port: number };
      const res = await fetch(`http://127.0.0.1:${port}/console`);
      expect(res.status).toBe(503);
      expect(res.headers.get('content-security-policy')).toContain("script-src 'self'");
      expect(await res.text()).toContain('npm run build:console');
    } finally {
      server.close();
    }
  });
});

describe('the operations snapshot', () => {
  const now = Date.parse('2026-01-01T12:00:00Z');
  const conv = (id: string, channel: string, status: string) =>
    ({ id, channel, status }) as unknown as Conversation;
  const msg = (state: string, secondsAgo: number) =>
    ({
      type: 'user',
      processing: { state },
      createdAt: new Date(now - secondsAgo * 1000).toISOString(),
    }) as unknown as Message;

  function deps(bot: unknown) {
    const conversations: Record<string, Conversation[]> = {
      open: [conv('conv_a', 'sms', 'open'), conv('conv_b', 'webchat', 'open')],
      handoff: [conv('conv_c', 'sms', 'handoff')],
    };
    const messages: Record<string, Message[]> = {
      conv_a: [msg('queued', 5), msg('processing', 30), msg('done', 90)],
      conv_b: [msg('done', 10)],
      conv_c: [msg('queued', 12)],
    };
    return {
      bot,
      adapters: [{ name: 'webchat' }, { name: 'api' }],
      store: {
        listConversations: async (q: { status: string }) => ({
          items: conversations[q.status] ?? [],
          cursor: null,
        }),
        listMessages: async (id: string) => ({ items: messages[id] ?? [], cursor: null }),
        pendingCount: async () => 7,
      },
      metrics: {
        processed: {
          get: async () => ({
            values: [
              { labels: { outcome: 'done' }, value: 4 },
              { labels: { outcome: 'error' }, value: 1 },
            ],
          }),
        },
      },
      webhooks: {
        list: async () => ({ items: [] }),
      },
    } as unknown as Parameters<typeof operations>[0];
  }

  it('counts depth, lag and handoffs per channel from the conversations not closed', async () => {
    const ops = await operations(deps(undefined), now);
    expect(ops.queue.pending).toBe(7);
    expect(ops.queue.scanned).toBe(3);
    const sms = ops.queue.channels.find((c) => c.channel === 'sms');
    expect(sms).toEqual({ channel: 'sms', depth: 3, lagMs: 30_000, handoff: 1 });
    expect(ops.queue.channels.find((c) => c.channel === 'webchat')).toEqual({
      channel: 'webchat',
      depth: 0,
      lagMs: 0,
      handoff: 0,
    });
    // Channels that are neither configured nor busy are left out.
    expect(ops.queue.channels.map((c) => c.channel).sort()).toEqual(['api', 'sms', 'webchat']);
    expect(ops.bot).toEqual({
      kind: 'demo',
      breaker: 'none',
      healthy: true,
      outcomes: { done: 4, error: 1 },
    });
  });

  it("reports a bot's open breaker as unhealthy", async () => {
    const ops = await operations(deps({ kind: 'http', circuitOpen: () => true }), now);
    expect(ops.bot).toMatchObject({ kind: 'http', breaker: 'open', healthy: false });
    const closed = await operations(deps({ kind: 'http', circuitOpen: () => false }), now);
    expect(closed.bot).toMatchObject({ breaker: 'closed', healthy: true });
  });
});
