/**
 * A recording fake of the Slack Web API on loopback (`auth.test`, `users.info`, `chat.postMessage`,
 * `chat.update`),
 * reached by the real `@slack/web-api` WebClient through `SLACK_API_URL`, plus a signer for requests
 * "from Slack" made with Slack's documented v0 scheme at run time.
 */
import { createHmac } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readBody } from '../helpers/http.js';

export const SIGNING_SECRET = 'test_signing_secret_0123456789abcdef';
export const BOT_TOKEN = 'xoxb-test-0000-token';
export const TEAM_ID = 'T0001';
export const BOT_USER_ID = 'U0BOT';
export const BOT_ID = 'B0BOT';

/**
 * Signs a request body the way Slack does (https://docs.slack.dev/authentication/verifying-requests-from-slack):
 * `v0=` + hex(HMAC-SHA256(secret, `v0:{timestamp}:{body}`)).
 */
export function signSlack(
  body: string,
  opts: { secret?: string; timestampS?: number } = {},
): { 'x-slack-signature': string; 'x-slack-request-timestamp': string } {
  const ts = String(opts.timestampS ?? Math.floor(Date.now() / 1000));
  const mac = createHmac('sha256', opts.secret ?? SIGNING_SECRET)
    .update(`v0:${ts}:${body}`)
    .digest('hex');
  return { 'x-slack-signature': `v0=${mac}`, 'x-slack-request-timestamp': ts };
}

let tsCounter = 0;

/** A fresh, unique Slack message ts (`seconds.micro`), as Slack assigns them. */
export function nextTs(): string {
  tsCounter += 1;
  return `${Math.floor(Date.now() / 1000)}.${String(tsCounter % 1_000_000).padStart(6, '0')}`;
}

/** An Events API `event_callback` envelope around `event`, with a unique `event_id`. */
export function eventEnvelope(
  event: Record<string, unknown>,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  tsCounter += 1;
  return {
    token: 'XXYYZZ',
    team_id: TEAM_ID,
    api_app_id: 'A0001',
    type: 'event_callback',
    event_id: `Ev${Date.now().toString(36)}${tsCounter}`.toUpperCase(),
    event_time: Math.floor(Date.now() / 1000),
    authorizations: [{ enterprise_id: null, team_id: TEAM_ID, user_id: BOT_USER_ID, is_bot: true }],
    is_ext_shared_channel: false,
    event,
    ...extra,
  };
}

/** The JSON body of a direct message from `user` in DM `channel` (an `event_callback` envelope). */
export function directMessage(opts: { channel: string; user: string; text: string; ts: string }): string {
  return JSON.stringify(
    eventEnvelope({
      type: 'message',
      channel: opts.channel,
      channel_type: 'im',
      user: opts.user,
      text: opts.text,
      ts: opts.ts,
      event_ts: opts.ts,
    }),
  );
}

/** Posts a signed event body to a gateway's Slack events endpoint. */
export function postEvent(gatewayUrl: string, body: string): Promise<Response> {
  return fetch(`${gatewayUrl}/webhooks/slack/events`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...signSlack(body) },
    body,
  });
}

export interface SlackCall {
  method: string;
  params: Record<string, string>;
  authorization: string | undefined;
  /** The HTTP status the fake answered. */
  status: number;
  /** `performance.now()` when the request arrived. */
  at: number;
}

export interface SlackPost {
  channel: string;
  text: string;
  thread_ts?: string;
  /** The custom name the post is shown under (`chat.postMessage` `username`). */
  username?: string;
  blocks?: Array<Record<string, unknown>>;
  /** The ts the fake assigned. */
  ts: string;
  at: number;
}

/** One `chat.update` of a posted message. */
export interface SlackUpdate {
  channel: string;
  ts: string;
  text: string;
  blocks?: Array<Record<string, unknown>>;
  at: number;
}

export class FakeSlackApi {
  readonly calls: SlackCall[] = [];
  readonly posts: SlackPost[] = [];
  readonly updates: SlackUpdate[] = [];
  /** Milliseconds `chat.postMessage` takes to answer (a slow Slack). */
  postDelayMs = 0;
  /** users.info answers; unknown users get `user_not_found`. */
  readonly users = new Map<
    string,
    { name: string; display_name?: string; real_name?: string; email?: string }
  >([
    ['U0001', { name: 'jane', display_name: 'Jane D', real_name: 'Jane Doe' }],
    ['U0002', { name: 'bob', real_name: 'Bob Roe' }],
  ]);
  /** Per method: answers to give before answering normally, in order. */
  readonly #script = new Map<string, Array<{ status: 429; retryAfterS: number } | { error: string }>>();
  #seq = 0;
  #server: Server;
  /** Base URL with the trailing `/api/`, as `SLACK_API_URL`. */
  url = '';

  private constructor() {
    this.#server = createServer(async (req, res) => {
      const at = performance.now();
      const method = (req.url ?? '').replace(/^\/api\//, '').split('?')[0] ?? '';
      const params = Object.fromEntries(new URLSearchParams(await readBody(req)));
      const call: SlackCall = { method, params, authorization: req.headers.authorization, status: 200, at };
      this.calls.push(call);
      const next = this.#script.get(method)?.shift();
      if (next && 'status' in next) {
        call.status = 429;
        res.writeHead(429, { 'retry-after': String(next.retryAfterS), 'content-type': 'application/json' });
        res.end(JSON.stringify({ ok: false, error: 'ratelimited' }));
        return;
      }
      const reply = (body: Record<string, unknown>) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      if (req.headers.authorization !== `Bearer ${BOT_TOKEN}`)
        return reply({ ok: false, error: 'invalid_auth' });
      if (next) return reply({ ok: false, error: next.error });
      switch (method) {
        case 'auth.test':
          return reply({
            ok: true,
            user_id: BOT_USER_ID,
            bot_id: BOT_ID,
            team_id: TEAM_ID,
            user: 'switchboard',
          });
        case 'users.info': {
          const user = this.users.get(params.user ?? '');
          if (!user) return reply({ ok: false, error: 'user_not_found' });
          return reply({
            ok: true,
            user: { id: params.user, name: user.name, real_name: user.real_name, profile: { ...user } },
          });
        }
        case 'chat.postMessage': {
          if (this.postDelayMs > 0) await new Promise((r) => setTimeout(r, this.postDelayMs));
          this.#seq += 1;
          const ts = `${Math.floor(Date.now() / 1000)}.${String(this.#seq).padStart(6, '0')}`;
          this.posts.push({
            channel: params.channel ?? '',
            text: params.text ?? '',
            ...(params.thread_ts ? { thread_ts: params.thread_ts } : {}),
            ...(params.blocks ? { blocks: JSON.parse(params.blocks) } : {}),
            ...(params.username ? { username: params.username } : {}),
            ts,
            at,
          });
          return reply({ ok: true, channel: params.channel, ts });
        }
        case 'chat.update': {
          const post = this.posts.find((p) => p.channel === params.channel && p.ts === params.ts);
          if (!post) return reply({ ok: false, error: 'message_not_found' });
          const blocks = params.blocks ? JSON.parse(params.blocks) : undefined;
          this.updates.push({
            channel: post.channel,
            ts: post.ts,
            text: params.text ?? '',
            ...(blocks ? { blocks } : {}),
            at,
          });
          post.text = params.text ?? post.text;
          if (blocks) post.blocks = blocks;
          return reply({ ok: true, channel: post.channel, ts: post.ts, text: post.text });
        }
        case 'assistant.threads.setStatus':
          // https://docs.slack.dev/reference/methods/assistant.threads.setStatus: all three required
          // (an empty status clears it).
          if (!params.channel_id || !params.thread_ts || params.status === undefined)
            return reply({ ok: false, error: 'invalid_arguments' });
          return reply({ ok: true });
        default:
          return reply({ ok: false, error: 'unknown_method' });
      }
    });
  }

  static async start(): Promise<FakeSlackApi> {
    const fake = new FakeSlackApi();
    await new Promise<void>((resolve) => fake.#server.listen(0, '127.0.0.1', () => resolve()));
    const { port } = fake.#server.address() as AddressInfo;
    fake.url = `http://127.0.0.1:${port}/api/`;
    return fake;
  }

  /** The next `count` calls of `method` get HTTP 429 with `Retry-After: retryAfterS`. */
  rateLimit(method: string, count: number, retryAfterS: number): void {
    const list = this.#script.get(method) ?? [];
    for (let i = 0; i < count; i++) list.push({ status: 429, retryAfterS });
    this.#script.set(method, list);
  }

  /** The next call of `method` answers `{ ok: false, error }` (HTTP 200, as Slack does). */
  failNext(method: string, error: string): void {
    const list = this.#script.get(method) ?? [];
    list.push({ error });
    this.#script.set(method, list);
  }

  /** The thread replies posted under `ts` in `channel`, oldest first. */
  threadOf(channel: string, ts: string): SlackPost[] {
    return this.posts.filter((p) => p.channel === channel && p.thread_ts === ts);
  }

  callsOf(method: string): SlackCall[] {
    return this.calls.filter((c) => c.method === method);
  }

  close(): Promise<void> {
    this.#server.closeAllConnections();
    return new Promise((resolve) => this.#server.close(() => resolve()));
  }
}
