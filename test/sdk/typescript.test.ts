/**
 * The TypeScript SDK (sdk/typescript) against a live gateway: the quick start (a message and the bot's
 * reply), every page of a list, typed errors by status and code, retries that keep their
 * Idempotency-Key (a write whose answer is lost takes effect once), 429 and 503 with Retry-After, and
 * verifyWebhook on the published vectors and on real signed deliveries. A loopback proxy between the
 * SDK and the gateway loses answers, injects refusals and records what each attempt carried.
 */
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  BadRequestError,
  ConflictError,
  ForbiddenError,
  InternalServerError,
  isSwitchboardError,
  NotFoundError,
  PayloadTooLargeError,
  RateLimitedError,
  ServiceUnavailableError,
  Switchboard,
  SwitchboardConnectionError,
  SwitchboardError,
  signWebhook,
  UnauthorizedError,
  UnprocessableError,
  UnsupportedMediaTypeError,
  verifyWebhook,
  WebhookVerificationError,
} from '../../sdk/typescript/src/index.js';
import { API_KEY, startGateway, type TestGateway } from '../helpers/gateway.js';
import { readBody } from '../helpers/http.js';
import { hasRedisServer, RedisServer, redisAvailable } from '../helpers/redis.js';
import { type ReceivedDelivery, WebhookReceiver } from '../helpers/webhook-receiver.js';

const VECTORS = JSON.parse(
  readFileSync(new URL('../fixtures/outbound-webhook-signature-vectors.json', import.meta.url), 'utf8'),
) as {
  standard_webhooks_published_vector: Record<string, string>;
  standard_webhooks_spec_example_payload: {
    secret: string;
    msgId: string;
    timestamp: number;
    payload: string;
    signature_header: string;
  };
};

/** A well-formed contact id no contact has. */
const NO_SUCH_CONTACT = `ct_${'0'.repeat(26)}`;

type Action =
  | { kind: 'lose-answer' }
  | { kind: 'hang' }
  | { kind: 'answer'; status: number; headers?: Record<string, string>; body?: unknown };

interface Seen {
  method: string;
  url: string;
  idempotencyKey: string | undefined;
  body: string;
}

/** Forwards to the gateway; the next requests `plan` matches are lost, hung or answered in its place. */
class LossyProxy {
  readonly seen: Seen[] = [];
  readonly plan: Action[] = [];
  match: (req: IncomingMessage) => boolean = () => true;
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  url = '';

  constructor(readonly target: string) {
    this.#server = createServer((req, res) => void this.#handle(req, res));
    this.#server.on('connection', (s) => {
      this.#sockets.add(s);
      s.on('close', () => this.#sockets.delete(s));
    });
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
    return this;
  }

  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  attempts(method: string, path: string): Seen[] {
    return this.seen.filter((s) => s.method === method && s.url.split('?')[0] === path);
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req);
    const key = req.headers['idempotency-key'];
    this.seen.push({
      method: req.method ?? '',
      url: req.url ?? '',
      idempotencyKey: typeof key === 'string' ? key : undefined,
      body,
    });
    const action = this.plan.length > 0 && this.match(req) ? this.plan.shift() : undefined;
    if (action?.kind === 'hang') return;
    if (action?.kind === 'answer') {
      res
        .writeHead(action.status, { 'content-type': 'application/problem+json', ...action.headers })
        .end(JSON.stringify(action.body ?? {}));
      return;
    }
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) {
      if (typeof v === 'string' && !['host', 'connection', 'content-length', 'keep-alive'].includes(k))
        headers[k] = v;
    }
    const upstream = await fetch(`${this.target}${req.url}`, {
      method: req.method,
      headers,
      ...(body ? { body } : {}),
    });
    const bytes = Buffer.from(await upstream.arrayBuffer());
    if (action?.kind === 'lose-answer') {
      // The gateway did the work and answered; the caller never hears it.
      req.socket.destroy();
      return;
    }
    const out: Record<string, string> = {};
    upstream.headers.forEach((v, k) => {
      if (
        !['content-length', 'content-encoding', 'transfer-encoding', 'connection', 'keep-alive'].includes(k)
      )
        out[k] = v;
    });
    res.writeHead(upstream.status, out).end(bytes);
  }
}

/** Catches the rejection of `promise`, failing when it resolves. */
async function refusal(promise: Promise<unknown>): Promise<SwitchboardError> {
  try {
    await promise;
  } catch (err) {
    return err as SwitchboardError;
  }
  throw new Error('expected a refusal');
}

describe('TypeScript SDK against a live gateway', () => {
  let gw: TestGateway;
  let sb: Switchboard;

  beforeAll(async () => {
    gw = await startGateway({ WEBHOOKS_ALLOW_PRIVATE: 'true' });
    sb = new Switchboard({ baseUrl: gw.url, apiKey: API_KEY });
  });
  afterAll(async () => {
    await gw?.stop();
  });

  describe('calls', () => {
    it('sends a message and gets the bot reply (the quick start)', async () => {
      const { conversationId } = await sb.createSession({ user: { name: 'Ann' } });
      expect(conversationId).toMatch(/^conv_/);
      const answer = await sb.sendMessage(conversationId, 'hello there', { wait: 10 });
      // 200 with the replies, or 202 `queued` when the bot took longer than `wait`: the types tell them apart.
      if (!('replies' in answer)) throw new Error(`queued: ${JSON.stringify(answer)}`);
      expect(answer.message.text).toBe('hello there');
      expect(answer.replies.map((r) => r.text)).toEqual(['You said: hello there']);
      const history = await sb.messages.list(conversationId).toArray();
      expect(history.map((m) => m.text)).toEqual(['hello there', 'You said: hello there']);
    });

    it('iterates every page of a list, and gives one page with .page()', async () => {
      const conv = await sb.conversations.create({ channel: 'api', meta: { suite: 'ts-sdk' } });
      for (let i = 0; i < 7; i++) await sb.messages.create(conv.id, { type: 'context', text: `note ${i}` });

      const first = await sb.messages.list(conv.id, { take: 3 }).page();
      expect(first.items).toHaveLength(3);
      expect(typeof first.cursor).toBe('string');
      const texts: string[] = [];
      for await (const m of sb.messages.list(conv.id, { take: 3 })) texts.push(m.text);
      expect(texts).toEqual([0, 1, 2, 3, 4, 5, 6].map((i) => `note ${i}`));
      const sizes: number[] = [];
      for await (const page of sb.messages.list(conv.id, { take: 3 }).pages()) sizes.push(page.items.length);
      expect(sizes).toEqual([3, 3, 1]);
      const newest = await sb.messages.list(conv.id, { take: 2, order: 'desc' }).toArray();
      expect(newest.map((m) => m.text)).toEqual([6, 5, 4, 3, 2, 1, 0].map((i) => `note ${i}`));
      // Starting from a cursor continues from there.
      const rest = await sb.messages.list(conv.id, { take: 3, cursor: first.cursor ?? '' }).toArray();
      expect(rest.map((m) => m.text)).toEqual([3, 4, 5, 6].map((i) => `note ${i}`));

      const run = `run-${Date.now()}`;
      const made: string[] = [];
      for (let i = 0; i < 5; i++)
        made.push((await sb.conversations.create({ channel: 'api', meta: { run } })).id);
      const listed: string[] = [];
      for await (const c of sb.conversations.list({ take: 2, meta: { run } })) listed.push(c.id);
      expect(listed).toEqual(made);
    });

    it('calls any operation by operationId or by method and path, typed from the document', async () => {
      const conv = await sb.api.createConversation({ body: { channel: 'api', meta: { crmId: '1' } } });
      const got = await sb.request('get', '/v1/conversations/{id}', { path: { id: conv.id } });
      expect(got.meta).toEqual({ crmId: '1' });
      const updated = await sb.api.updateConversation({
        path: { id: conv.id },
        body: { meta: { crmId: null, tier: 'gold' } },
      });
      expect(updated.meta).toEqual({ tier: 'gold' });
      await sb.messages.create(conv.id, { type: 'user', text: 'exported line' });
      const bytes = await sb.api.exportConversation({ path: { id: conv.id } });
      expect(bytes).toBeInstanceOf(Uint8Array);
      expect(JSON.parse(new TextDecoder().decode(bytes).split('\n')[0] ?? '').text).toBe('exported line');
      expect(await sb.conversations.export(conv.id, { format: 'text' })).toContain('exported line');
      expect(await sb.conversations.delete(conv.id)).toEqual({ id: conv.id });
      const doc = (await sb.api.getOpenApi()) as { paths: Record<string, unknown> };
      expect(Object.keys(doc.paths)).toContain('/v1/conversations/{id}');
      if (Math.random() > 2) {
        // Compile-time only: the document's types refuse what the gateway would.
        // @ts-expect-error the path parameter is required
        await sb.api.getConversation();
        // @ts-expect-error channel is an enum
        await sb.conversations.create({ channel: 'fax' });
        // @ts-expect-error no such path
        await sb.request('get', '/v1/nowhere');
      }
    });
  });

  describe('errors', () => {
    it('404 is a NotFoundError carrying its code, detail and request id', async () => {
      const err = await refusal(sb.conversations.get('conv_nope'));
      expect(err).toBeInstanceOf(NotFoundError);
      expect([err.status, err.code]).toEqual([404, 'GW_ERR_NOT_FOUND']);
      expect(err.detail).toContain('conv_nope');
      expect(err.requestId).toBeTruthy();
      expect(isSwitchboardError(err, 'GW_ERR_NOT_FOUND')).toBe(true);
      expect(isSwitchboardError(err, 'GW_ERR_CONFLICT')).toBe(false);
    });

    it('400 validation names the failing fields', async () => {
      const conv = await sb.conversations.create({ channel: 'api' });
      const err = await refusal(sb.messages.create(conv.id, { type: 'bogus' as 'user', text: 'x' }));
      expect(err).toBeInstanceOf(BadRequestError);
      expect([err.status, err.code]).toEqual([400, 'GW_ERR_VALIDATION']);
      expect(err.fields).toContain('type');
      const take = await refusal(sb.messages.list(conv.id, { take: 500 }).page());
      expect(take.fields).toContain('take');
      const cursor = await refusal(sb.conversations.list({ cursor: 'not-a-cursor' }).page());
      expect(cursor.code).toBe('GW_ERR_INVALID_CURSOR');
    });

    it('409 and 422 carry their codes; 401 is not retried and the key never shows', async () => {
      const conv = await sb.conversations.create({ channel: 'api' });
      const release = await refusal(sb.api.releaseHandoff({ path: { id: conv.id } }));
      expect(release).toBeInstanceOf(ConflictError);
      expect(release.code).toBe('GW_ERR_NOT_IN_HANDOFF');
      const merge = await refusal(sb.contacts.merge(NO_SUCH_CONTACT, { from: NO_SUCH_CONTACT }));
      expect(merge).toBeInstanceOf(UnprocessableError);
      expect([merge.status, merge.code]).toEqual([422, 'GW_ERR_MERGE_SELF']);
      // One Idempotency-Key for two different writes.
      await sb.conversations.create({ channel: 'api' }, { idempotencyKey: 'ts-sdk-reused' });
      const reused = await refusal(
        sb.conversations.create({ channel: 'sms' }, { idempotencyKey: 'ts-sdk-reused' }),
      );
      expect(reused.code).toBe('GW_ERR_IDEMPOTENCY_KEY_REUSED');

      const proxy = await new LossyProxy(gw.url).start();
      try {
        const secret = 'wrong-key-0123456789abcdef';
        const bad = new Switchboard({ baseUrl: `${proxy.url}/v1`, apiKey: secret });
        const err = await refusal(bad.conversations.list().page());
        expect(err).toBeInstanceOf(UnauthorizedError);
        expect([err.status, err.code]).toEqual([401, 'GW_ERR_UNAUTHORIZED']);
        expect(proxy.seen).toHaveLength(1);
        expect(`${err.message} ${JSON.stringify(err)} ${JSON.stringify(bad)}`).not.toContain(secret);
      } finally {
        await proxy.close();
      }
    });
  });

  describe('without a gateway', () => {
    const answering =
      (status: number, body: string, headers: Record<string, string> = {}, urls: string[] = []) =>
      async (input: string | URL | Request) => {
        urls.push(String(input));
        return new Response(body, {
          status,
          headers: { 'content-type': 'application/problem+json', ...headers },
        });
      };

    it('maps each status to its class, any other to SwitchboardError itself', async () => {
      const classes: Record<number, typeof SwitchboardError> = {
        400: BadRequestError,
        401: UnauthorizedError,
        403: ForbiddenError,
        404: NotFoundError,
        409: ConflictError,
        413: PayloadTooLargeError,
        415: UnsupportedMediaTypeError,
        422: UnprocessableError,
        429: RateLimitedError,
        500: InternalServerError,
        503: ServiceUnavailableError,
        418: SwitchboardError,
      };
      const problem = JSON.stringify({
        code: 'GW_ERR_VALIDATION',
        title: 'Request failed validation',
        detail: 'bad',
        requestId: 'req-body',
        errors: [{ field: 'participants.0.role', message: 'Invalid' }],
        retryAfter: 7,
      });
      for (const [status, Class] of Object.entries(classes)) {
        const c = new Switchboard({
          baseUrl: 'http://gw.test',
          apiKey: 'k',
          retries: 0,
          fetch: answering(Number(status), problem, { 'x-request-id': 'req-header' }),
        });
        const err = await refusal(c.conversations.get('x'));
        expect(err.constructor, status).toBe(Class);
        expect(err).toBeInstanceOf(SwitchboardError);
        expect([err.status, err.code, err.title, err.detail]).toEqual([
          Number(status),
          'GW_ERR_VALIDATION',
          'Request failed validation',
          'bad',
        ]);
        expect(err.requestId).toBe('req-header');
        expect(err.fields).toEqual(['participants.0.role']);
        expect(err.retryAfter).toBe(7);
      }
      const html = new Switchboard({
        baseUrl: 'http://gw.test',
        apiKey: 'k',
        fetch: answering(502, '<html>'),
      });
      const err = await refusal(html.conversations.get('x'));
      expect([err.status, err.code, err.errors]).toEqual([502, undefined, []]);
    });

    it('encodes path parameters, meta filters and booleans', async () => {
      const urls: string[] = [];
      const c = new Switchboard({
        baseUrl: 'http://gw.test/v1/',
        apiKey: 'k',
        fetch: answering(404, '{}', {}, urls),
      });
      await refusal(c.api.replayDelivery({ path: { id: 'a b', did: 'd/1' }, query: { again: true } }));
      await refusal(c.conversations.list({ take: 5, status: 'open', meta: { tier: 'gold' } }).page());
      expect(urls).toEqual([
        'http://gw.test/v1/webhooks/a%20b/deliveries/d%2F1/replay?again=true',
        'http://gw.test/v1/conversations?take=5&status=open&meta%5Btier%5D=gold',
      ]);
      await expect(c.api.getConversation({ path: { id: '' } })).rejects.toThrow(
        /Missing path parameter `id`/,
      );
    });
  });

  describe('retries', () => {
    let proxy: LossyProxy;
    let waits: number[];
    let client: Switchboard;
    beforeAll(async () => {
      proxy = await new LossyProxy(gw.url).start();
    });
    afterAll(async () => {
      await proxy?.close();
    });
    const fresh = (extra: Partial<ConstructorParameters<typeof Switchboard>[0]> = {}) => {
      waits = [];
      proxy.seen.length = 0;
      proxy.plan.length = 0;
      proxy.match = () => true;
      client = new Switchboard({
        baseUrl: proxy.url,
        apiKey: API_KEY,
        sleep: async (ms) => {
          waits.push(ms);
        },
        ...extra,
      });
      return client;
    };

    it('a write whose answer is lost is retried with the same Idempotency-Key and takes effect once', async () => {
      fresh();
      const run = `lost-${Date.now()}`;
      proxy.match = (req) => req.method === 'POST';
      proxy.plan.push({ kind: 'lose-answer' });
      const conv = await client.conversations.create({ channel: 'api', meta: { run } });
      const attempts = proxy.attempts('POST', '/v1/conversations');
      expect(attempts).toHaveLength(2);
      expect(attempts[0]?.idempotencyKey).toMatch(/^[0-9a-f-]{36}$/);
      expect(attempts[1]?.idempotencyKey).toBe(attempts[0]?.idempotencyKey);
      expect(attempts[1]?.body).toBe(attempts[0]?.body);
      expect(waits).toHaveLength(1);
      const listed = await client.conversations.list({ meta: { run } }).toArray();
      expect(listed.map((c) => c.id)).toEqual([conv.id]);
      // Reads carry no key; each call gets its own.
      expect(proxy.attempts('GET', '/v1/conversations')[0]?.idempotencyKey).toBeUndefined();
      await client.conversations.create({ channel: 'api', meta: { run } });
      const keys = new Set(proxy.attempts('POST', '/v1/conversations').map((a) => a.idempotencyKey));
      expect(keys.size).toBe(2);
    });

    it('a sent message whose answer is lost is stored once, with one bot reply', async () => {
      fresh();
      const { conversationId } = await client.createSession();
      proxy.match = (req) => req.url === '/v1/messages';
      proxy.plan.push({ kind: 'lose-answer' });
      const answer = await client.sendMessage(conversationId, 'only once', { wait: 10 });
      expect(proxy.attempts('POST', '/v1/messages')).toHaveLength(2);
      expect('replies' in answer && answer.replies.map((r) => r.text)).toEqual(['You said: only once']);
      const texts = (await client.messages.list(conversationId).toArray()).map((m) => m.text);
      expect(texts).toEqual(['only once', 'You said: only once']);
    });

    it('the caller’s Idempotency-Key is the one sent, on every attempt', async () => {
      fresh();
      proxy.plan.push({
        kind: 'answer',
        status: 503,
        headers: { 'retry-after': '2' },
        body: { code: 'GW_ERR_QUEUE_FULL' },
      });
      await client.conversations.create({ channel: 'api' }, { idempotencyKey: 'ts-sdk-own-key' });
      expect(proxy.attempts('POST', '/v1/conversations').map((a) => a.idempotencyKey)).toEqual([
        'ts-sdk-own-key',
        'ts-sdk-own-key',
      ]);
      // 503 with Retry-After: 2 waits 2 s plus at most 10 %.
      expect(waits).toHaveLength(1);
      expect(waits[0]).toBeGreaterThanOrEqual(2000);
      expect(waits[0]).toBeLessThanOrEqual(2200);
    });

    it('a write still in flight under its key (409) is retried; other conflicts are not', async () => {
      fresh();
      proxy.plan.push({
        kind: 'answer',
        status: 409,
        headers: { 'retry-after': '1' },
        body: { code: 'GW_ERR_IDEMPOTENCY_IN_FLIGHT' },
      });
      const conv = await client.conversations.create({ channel: 'api' });
      expect(proxy.attempts('POST', '/v1/conversations')).toHaveLength(2);
      expect(waits).toHaveLength(1);
      expect(waits[0]).toBeGreaterThanOrEqual(1000);

      fresh();
      const err = await refusal(client.api.releaseHandoff({ path: { id: conv.id } }));
      expect(err.code).toBe('GW_ERR_NOT_IN_HANDOFF');
      expect(proxy.seen).toHaveLength(1);
      expect(waits).toEqual([]);
    });

    it('429 is retried after Retry-After, capped; GETs are retried plainly', async () => {
      fresh({ maxRetryAfterMs: 5000 });
      const limited = {
        kind: 'answer',
        status: 429,
        body: { code: 'GW_ERR_RATE_LIMITED', retryAfter: 30 },
      } as const;
      proxy.plan.push(
        { ...limited, headers: { 'retry-after': '1' } },
        { ...limited, headers: { 'retry-after': '30' } },
      );
      const page = await client.conversations.list({ take: 1 }).page();
      expect(page.items.length).toBeLessThanOrEqual(1);
      expect(proxy.attempts('GET', '/v1/conversations')).toHaveLength(3);
      expect(proxy.seen.every((s) => s.idempotencyKey === undefined)).toBe(true);
      expect(waits[0]).toBeGreaterThanOrEqual(1000);
      expect(waits[0]).toBeLessThanOrEqual(1100);
      // 30 s asked, 5 s allowed.
      expect(waits[1]).toBeGreaterThanOrEqual(5000);
      expect(waits[1]).toBeLessThanOrEqual(5500);
    });

    it('retries are bounded, then the last refusal is thrown; 400 is never retried', async () => {
      fresh({ retries: 2 });
      for (let i = 0; i < 3; i++)
        proxy.plan.push({ kind: 'answer', status: 503, body: { code: 'GW_ERR_STORE_UNAVAILABLE' } });
      const err = await refusal(client.conversations.get('conv_x'));
      expect(err).toBeInstanceOf(ServiceUnavailableError);
      expect(err.code).toBe('GW_ERR_STORE_UNAVAILABLE');
      expect(proxy.seen).toHaveLength(3);
      // No Retry-After: equal jitter on a doubling ceiling (0.5 s, then 1 s).
      expect(waits[0]).toBeGreaterThanOrEqual(250);
      expect(waits[0]).toBeLessThanOrEqual(500);
      expect(waits[1]).toBeGreaterThanOrEqual(500);
      expect(waits[1]).toBeLessThanOrEqual(1000);

      fresh();
      await refusal(client.messages.list('conv_x', { take: 0 }).page());
      expect(proxy.seen).toHaveLength(1);
      expect(waits).toEqual([]);
    });

    it('an attempt that times out is retried; connection errors end in SwitchboardConnectionError', async () => {
      fresh({ timeoutMs: 300 });
      proxy.plan.push({ kind: 'hang' });
      const conv = await client.conversations.create({ channel: 'api' });
      expect(proxy.attempts('POST', '/v1/conversations')).toHaveLength(2);
      expect((await sb.conversations.get(conv.id)).id).toBe(conv.id);

      const closed = new Switchboard({
        baseUrl: 'http://127.0.0.1:1',
        apiKey: API_KEY,
        retries: 2,
        sleep: async () => {},
      });
      const err = await refusal(closed.conversations.list().page());
      expect(err).toBeInstanceOf(SwitchboardConnectionError);
      expect(err.status).toBeUndefined();
    });

    it('the caller’s AbortSignal cancels the call, retries included', async () => {
      fresh({ timeoutMs: 10_000 });
      proxy.plan.push({ kind: 'hang' });
      const controller = new AbortController();
      const call = client.conversations.create({ channel: 'api' }, { signal: controller.signal });
      setTimeout(() => controller.abort(), 100);
      const err = await refusal(call);
      expect((err as Error).name).toBe('AbortError');
      expect(proxy.attempts('POST', '/v1/conversations')).toHaveLength(1);
      expect(waits).toEqual([]);
    });

    it('a real rate limit answers RateLimitedError with its Retry-After', async () => {
      const limitedGw = await startGateway({ RATE_LIMIT_PER_MIN: '2' });
      try {
        const strict = new Switchboard({ baseUrl: limitedGw.url, apiKey: API_KEY, retries: 0 });
        await strict.conversations.list().page();
        await strict.conversations.list().page();
        const err = await refusal(strict.conversations.list().page());
        expect(err).toBeInstanceOf(RateLimitedError);
        expect([err.status, err.code]).toEqual([429, 'GW_ERR_RATE_LIMITED']);
        expect(err.retryAfter).toBeGreaterThan(0);
        expect(err.retryAfter).toBeLessThanOrEqual(60);

        const seenWaits: number[] = [];
        const patient = new Switchboard({
          baseUrl: limitedGw.url,
          apiKey: API_KEY,
          retries: 1,
          maxRetryAfterMs: 10,
          sleep: async (ms) => {
            seenWaits.push(ms);
          },
        });
        await refusal(patient.conversations.list().page());
        expect(seenWaits).toHaveLength(1);
        expect(seenWaits[0]).toBeGreaterThanOrEqual(10);
        expect(seenWaits[0]).toBeLessThanOrEqual(11);
      } finally {
        await limitedGw.stop();
      }
    });
  });

  describe('verifyWebhook', () => {
    const published = VECTORS.standard_webhooks_published_vector;
    const spec = VECTORS.standard_webhooks_spec_example_payload;
    const publishedHeaders = {
      'webhook-id': published['webhook-id'] ?? '',
      'webhook-timestamp': published['webhook-timestamp'] ?? '',
      'webhook-signature': published['webhook-signature'] ?? '',
    };
    const at = Number(published['webhook-timestamp']);

    it('verifies the published Standard Webhooks vectors and signs them alike', async () => {
      const event = await verifyWebhook({
        secret: published.secret ?? '',
        headers: publishedHeaders,
        body: published.body ?? '',
        now: at,
      });
      expect(event).toEqual({ test: 2432232314 });
      expect(
        await signWebhook({
          secret: spec.secret,
          id: spec.msgId,
          timestamp: spec.timestamp,
          body: spec.payload,
        }),
      ).toBe(spec.signature_header);
      // Header names in any case, a Headers object, and bytes for the body.
      const upper = Object.fromEntries(
        Object.entries(publishedHeaders).map(([k, v]) => [k.toUpperCase(), v]),
      );
      await verifyWebhook({
        secret: published.secret ?? '',
        headers: upper,
        body: published.body ?? '',
        now: at,
      });
      await verifyWebhook({
        secret: published.secret ?? '',
        headers: new Headers(publishedHeaders),
        body: new TextEncoder().encode(published.body ?? ''),
        now: at,
      });
    });

    it('refuses tampering, another secret, stale or future timestamps, missing headers', async () => {
      const base = {
        secret: published.secret ?? '',
        headers: publishedHeaders,
        body: published.body ?? '',
        now: at,
      };
      const refused = async (opts: Parameters<typeof verifyWebhook>[0], message: RegExp) => {
        const err = await verifyWebhook(opts).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(WebhookVerificationError);
        expect((err as Error).message).toMatch(message);
      };
      await refused({ ...base, body: '{"test": 2432232315}' }, /No matching signature/);
      await refused({ ...base, secret: `whsec_${btoa('k'.repeat(32))}` }, /No matching signature/);
      await refused({ ...base, now: at + 301 }, /too old/);
      await refused({ ...base, now: at - 301 }, /too new/);
      await verifyWebhook({ ...base, now: at + 3600, toleranceS: 3601 });
      await refused({ ...base, headers: { ...publishedHeaders, 'webhook-signature': '' } }, /Missing/);
      await refused({ ...base, headers: { ...publishedHeaders, 'webhook-timestamp': '12ab' } }, /Invalid/);
      const v2 = publishedHeaders['webhook-signature'].replace('v1,', 'v2,');
      await refused({ ...base, headers: { ...publishedHeaders, 'webhook-signature': v2 } }, /No matching/);
      // Any entry of several may match.
      const several = `v1,${btoa('x'.repeat(32))} ${publishedHeaders['webhook-signature']}`;
      await verifyWebhook({ ...base, headers: { ...publishedHeaders, 'webhook-signature': several } });
      await expect(verifyWebhook({ ...base, secret: 'whsec_not base64!' })).rejects.toBeInstanceOf(TypeError);
    });

    describe('real deliveries', () => {
      let receiver: WebhookReceiver;
      beforeAll(async () => {
        receiver = await WebhookReceiver.start();
      });
      afterAll(async () => {
        await receiver?.close();
      });
      const headersOf = (d: ReceivedDelivery) => ({
        'webhook-id': d.webhookId,
        'webhook-timestamp': String(d.timestamp),
        'webhook-signature': d.signature,
      });

      it('verify with the subscription secret, during a rotation with either secret, and forgeries do not', async () => {
        const hook = await sb.webhooks.create({ url: `${receiver.url}/ts`, events: ['message.created'] });
        expect(hook.secret).toMatch(/^whsec_/);
        receiver.secrets = [hook.secret];
        const conv = await sb.conversations.create({ channel: 'api' });
        await sb.messages.create(conv.id, { type: 'context', text: 'signed' });
        const [delivery] = await receiver.waitFor((r) => r.some((d) => d.event.type === 'message.created'));
        if (!delivery) throw new Error('no delivery');
        const event = await verifyWebhook({
          secret: hook.secret,
          headers: headersOf(delivery),
          body: delivery.raw,
        });
        expect(event.type).toBe('message.created');
        expect(event.id).toBe(delivery.webhookId);
        expect(event.data.message?.text).toBe('signed');
        await expect(
          verifyWebhook({
            secret: hook.secret,
            headers: headersOf(delivery),
            body: delivery.raw.replace('signed', 'SIGNED'),
          }),
        ).rejects.toBeInstanceOf(WebhookVerificationError);
        await expect(
          verifyWebhook({
            secret: hook.secret,
            headers: headersOf(delivery),
            body: delivery.raw,
            now: delivery.timestamp + 301,
          }),
        ).rejects.toThrow(/too old/);

        const rotated = await sb.webhooks.update(hook.id, { rotateSecret: true });
        const next = 'secret' in rotated ? rotated.secret : '';
        expect(next).toMatch(/^whsec_/);
        expect(next).not.toBe(hook.secret);
        const ping = await sb.webhooks.test(hook.id);
        expect(ping.eventType).toBe('ping');
        const pinged = (await receiver.waitFor((r) => r.some((d) => d.event.type === 'ping'))).find(
          (d) => d.event.type === 'ping',
        );
        if (!pinged) throw new Error('no ping');
        expect(pinged.signature.split(' ')).toHaveLength(2);
        for (const secret of [next, hook.secret, [`whsec_${btoa('z'.repeat(32))}`, next]]) {
          expect((await verifyWebhook({ secret, headers: headersOf(pinged), body: pinged.raw })).type).toBe(
            'ping',
          );
        }
        const deliveries = await sb.webhooks.deliveries(hook.id, { take: 1 }).toArray();
        expect(deliveries.length).toBeGreaterThanOrEqual(2);
        await sb.webhooks.delete(hook.id);
      });
    });
  });
});

describe.skipIf(!redisAvailable())('TypeScript SDK against a gateway on Redis', () => {
  let redis: RedisServer | undefined;
  let gw: TestGateway;
  let proxy: LossyProxy;
  beforeAll(async () => {
    let url = process.env.REDIS_URL;
    if (hasRedisServer()) {
      redis = await RedisServer.start();
      url = redis.url;
    }
    gw = await startGateway({ REDIS_URL: url, REDIS_KEY_PREFIX: `tssdk-${process.pid}:` });
    proxy = await new LossyProxy(gw.url).start();
  });
  afterAll(async () => {
    await proxy?.close();
    await gw?.stop();
    await redis?.dispose();
  });

  it('the quick start, and a message whose answer is lost takes effect once', async () => {
    const sb = new Switchboard({ baseUrl: proxy.url, apiKey: API_KEY, sleep: async () => {} });
    const { conversationId } = await sb.createSession();
    proxy.match = (req) => req.url === '/v1/messages';
    proxy.plan.push({ kind: 'lose-answer' });
    const answer = await sb.sendMessage(conversationId, 'Hello', { wait: 10 });
    if (!('replies' in answer)) throw new Error(`queued: ${JSON.stringify(answer)}`);
    expect(answer.replies.map((r) => r.text)).toEqual(['You said: Hello']);
    const keys = proxy.attempts('POST', '/v1/messages').map((a) => a.idempotencyKey);
    expect(keys).toHaveLength(2);
    expect(keys[1]).toBe(keys[0]);
    const texts = (await sb.messages.list(conversationId, { take: 1 }).toArray()).map((m) => m.text);
    expect(texts).toEqual(['Hello', 'You said: Hello']);
  });
});
