/**
 * @module The `/v1` client. Every operation of the document is callable by its `operationId` on
 * `client.api` (generated table, typed from the generated document types), by method and path with
 * `client.request()`, and the common ones through named resource methods. Lists iterate every page
 * with `for await`. Connection errors, timeouts, `429`, `503` and an idempotent write still in
 * flight (`409 GW_ERR_IDEMPOTENCY_IN_FLIGHT`) are retried with jittered exponential backoff, never
 * sooner than the `Retry-After` the gateway sent (capped); each write carries one `Idempotency-Key`
 * reused by every retry, so a retried write takes effect once.
 */
import { errorFor, type Problem, SwitchboardConnectionError, type SwitchboardError } from './errors.js';
import { OPERATIONS } from './generated/operations.js';
import type {
  AnswerOf,
  BodyOf,
  CallArgs,
  CallOptions,
  Contact,
  Conversation,
  Delivery,
  HttpMethod,
  ItemOf,
  Message,
  OperationId,
  operations,
  PaginatedOperationId,
  PathOperation,
  PathsWith,
  RequestOptions,
  Webhook,
} from './types.js';

export const VERSION = '0.1.0';

export interface SwitchboardOptions {
  /** The gateway's address (`http://localhost:3000`; a trailing `/v1` is accepted). */
  baseUrl: string;
  /** One of the gateway's API keys. Sent as `Authorization: Bearer`; never shown. */
  apiKey: string;
  /** Retries after the first attempt (default 3). */
  retries?: number;
  /** Bound on each attempt, in milliseconds (default 30 000). */
  timeoutMs?: number;
  /** First backoff ceiling in ms, doubling per retry (default 500). */
  backoffBaseMs?: number;
  /** Largest backoff ceiling in ms (default 8 000). */
  backoffMaxMs?: number;
  /** Longest `Retry-After` honoured, in ms (default 60 000): a longer one is waited only this long. */
  maxRetryAfterMs?: number;
  /** The `fetch` to use (default the global one). */
  fetch?: typeof fetch;
  /** Waits between retries (default `setTimeout`); tests pass their own. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/** Statuses worth another try: the gateway asks to come back later. */
const RETRY_STATUSES = new Set([429, 503]);

function defaultSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** `Retry-After` in ms: delta-seconds or an HTTP date; undefined when absent or unreadable. */
function retryAfterMs(value: string | null): number | undefined {
  if (value === null || value.trim() === '') return undefined;
  const seconds = Number(value.trim());
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

function scalar(value: unknown): string {
  return typeof value === 'string' ? value : String(value);
}

/** Encodes a query; `meta: { k: 'v' }` becomes `meta[k]=v`, undefined and null values are left out. */
function queryString(query: Record<string, unknown> | undefined): string {
  if (!query) return '';
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) {
    if (value === undefined || value === null) continue;
    if (Array.isArray(value)) for (const v of value) params.append(name, scalar(v));
    else if (typeof value === 'object') {
      for (const [k, v] of Object.entries(value as Record<string, unknown>))
        if (v !== undefined && v !== null) params.append(`${name}[${k}]`, scalar(v));
    } else params.append(name, scalar(value));
  }
  const text = params.toString();
  return text ? `?${text}` : '';
}

function fillPath(template: string, params: Record<string, unknown> | undefined): string {
  return template.replace(/\{(\w+)\}/g, (_, name: string) => {
    const value = params?.[name];
    if (value === undefined || value === null || value === '')
      throw new TypeError(`Missing path parameter \`${name}\` for ${template}`);
    return encodeURIComponent(scalar(value));
  });
}

const JSON_MEDIA = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i;

interface RawOptions extends RequestOptions {
  path?: Record<string, unknown>;
  query?: Record<string, unknown>;
  body?: unknown;
}

/** A cursor-paginated list: `for await` over every item, or `.page()` for one page. */
export class Paginator<
  Item,
  Page extends { items: readonly unknown[]; cursor?: string | null } = {
    items: Item[];
    cursor: string | null;
  },
> implements AsyncIterable<Item>
{
  readonly #fetchPage: (cursor: string | undefined) => Promise<Page>;
  readonly #cursor: string | undefined;

  constructor(fetchPage: (cursor: string | undefined) => Promise<Page>, cursor?: string) {
    this.#fetchPage = fetchPage;
    this.#cursor = cursor;
  }

  /** One page: the first (or the one at the `cursor` the call was given). Its `cursor` leads on. */
  page(cursor: string | undefined = this.#cursor): Promise<Page> {
    return this.#fetchPage(cursor);
  }

  /** Every page in turn, following `cursor` until it is null. */
  async *pages(): AsyncGenerator<Page, void, undefined> {
    let cursor = this.#cursor;
    const seen = new Set<string>();
    for (;;) {
      const page = await this.#fetchPage(cursor);
      yield page;
      const next = page.cursor;
      if (!next || seen.has(next)) return;
      seen.add(next);
      cursor = next;
    }
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<Item, void, undefined> {
    for await (const page of this.pages()) yield* page.items as readonly Item[];
  }

  /** Every item of every page, collected (mind the size of what you list). */
  async toArray(): Promise<Item[]> {
    const all: Item[] = [];
    for await (const item of this) all.push(item);
    return all;
  }
}

type PageOf<O> = AnswerOf<O> extends { items: unknown[]; cursor?: string | null } ? AnswerOf<O> : never;

/** A method per operation of the document, named by its `operationId`. */
export type OperationMethods = {
  [K in OperationId]: (
    ...args: CallArgs<operations[K]>
  ) => K extends PaginatedOperationId
    ? Paginator<ItemOf<operations[K]>, PageOf<operations[K]>>
    : Promise<AnswerOf<operations[K]>>;
};

type Q<K extends OperationId> = CallOptions<operations[K]>['query'];
type B<K extends OperationId> = BodyOf<operations[K]>;
type Opts = RequestOptions;

/** A client for one gateway. */
export class Switchboard {
  readonly baseUrl: string;
  readonly retries: number;
  readonly timeoutMs: number;
  /** Every operation by its `operationId` (`client.api.listConversations({ query })`). */
  readonly api: OperationMethods;
  readonly #apiKey: string;
  readonly #fetch: typeof fetch;
  readonly #sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  readonly #backoffBaseMs: number;
  readonly #backoffMaxMs: number;
  readonly #maxRetryAfterMs: number;

  constructor(options: SwitchboardOptions) {
    if (!options.apiKey) throw new TypeError('apiKey is required');
    if (!options.baseUrl) throw new TypeError('baseUrl is required');
    this.baseUrl = options.baseUrl.replace(/\/+$/, '').replace(/\/v1$/, '');
    this.#apiKey = options.apiKey;
    this.retries = Math.max(0, Math.floor(options.retries ?? 3));
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.#backoffBaseMs = options.backoffBaseMs ?? 500;
    this.#backoffMaxMs = options.backoffMaxMs ?? 8_000;
    this.#maxRetryAfterMs = options.maxRetryAfterMs ?? 60_000;
    const custom = options.fetch;
    this.#fetch = custom ?? ((input, init) => globalThis.fetch(input, init));
    this.#sleep = options.sleep ?? defaultSleep;
    const api: Record<string, (opts?: RawOptions) => unknown> = {};
    for (const [id, op] of Object.entries(OPERATIONS)) {
      api[id] = op.paginated
        ? (opts: RawOptions = {}) => this.#paginate(op.method, op.path, opts)
        : (opts: RawOptions = {}) => this.#send(op.method, op.path, opts);
    }
    this.api = api as unknown as OperationMethods;
  }

  /** Never the key. */
  toJSON(): { baseUrl: string } {
    return { baseUrl: this.baseUrl };
  }

  /**
   * Any operation by method and the document's path template:
   * `client.request('get', '/v1/conversations/{id}', { path: { id } })`.
   */
  request<M extends HttpMethod, P extends PathsWith<M>>(
    method: M,
    path: P,
    ...args: CallArgs<PathOperation<P, M>>
  ): Promise<AnswerOf<PathOperation<P, M>>> {
    return this.#send(method.toUpperCase(), path, (args[0] ?? {}) as RawOptions) as Promise<
      AnswerOf<PathOperation<P, M>>
    >;
  }

  // ------------------------------------------------------------------ chatbot API

  /** `POST /v1/sessions`: starts an `api` conversation → `{ sessionId, conversationId }`. */
  createSession(body: B<'createSession'> = {}, opts?: Opts) {
    return this.api.createSession({ ...opts, body });
  }

  /**
   * `POST /v1/messages`: a user's message into an `api` conversation. `{ message, replies }` when the
   * bot answered within `wait` seconds, else `{ status: 'queued', message }`.
   */
  sendMessage(
    conversationId: string,
    text: string,
    fields: Omit<B<'sendUserMessage'>, 'conversationId' | 'text'> = {},
    opts?: Opts,
  ) {
    return this.api.sendUserMessage({ ...opts, body: { ...fields, conversationId, text } });
  }

  // ------------------------------------------------------------------ resources

  readonly conversations = {
    list: (query?: Q<'listConversations'>, opts?: Opts) => this.api.listConversations({ ...opts, query }),
    create: (body: B<'createConversation'>, opts?: Opts) => this.api.createConversation({ ...opts, body }),
    get: (id: string, opts?: Opts): Promise<Conversation> =>
      this.api.getConversation({ ...opts, path: { id } }),
    update: (id: string, body: B<'updateConversation'>, opts?: Opts) =>
      this.api.updateConversation({ ...opts, path: { id }, body }),
    delete: (id: string, opts?: Opts) => this.api.deleteConversation({ ...opts, path: { id } }),
    /** `POST /v1/conversations/:id/send`: out through the conversation's channel. */
    send: (id: string, body: B<'sendToConversation'>, opts?: Opts): Promise<Message> =>
      this.api.sendToConversation({ ...opts, path: { id }, body }),
    /** The transcript as text (`jsonl`, the default, or `text`). */
    export: async (id: string, query?: Q<'exportConversation'>, opts?: Opts): Promise<string> =>
      new TextDecoder().decode(await this.api.exportConversation({ ...opts, path: { id }, query })),
  };

  readonly messages = {
    list: (conversationId: string, query?: Q<'listMessages'>, opts?: Opts) =>
      this.api.listMessages({ ...opts, path: { id: conversationId }, query }),
    create: (conversationId: string, body: B<'createMessage'>, opts?: Opts) =>
      this.api.createMessage({ ...opts, path: { id: conversationId }, body }),
    get: (conversationId: string, mid: string, opts?: Opts): Promise<Message> =>
      this.api.getMessage({ ...opts, path: { id: conversationId, mid } }),
    update: (conversationId: string, mid: string, body: B<'updateMessage'>, opts?: Opts) =>
      this.api.updateMessage({ ...opts, path: { id: conversationId, mid }, body }),
    delete: (conversationId: string, mid: string, opts?: Opts) =>
      this.api.deleteMessage({ ...opts, path: { id: conversationId, mid } }),
  };

  readonly contacts = {
    list: (query?: Q<'listContacts'>, opts?: Opts) => this.api.listContacts({ ...opts, query }),
    get: (id: string, opts?: Opts): Promise<Contact> => this.api.getContact({ ...opts, path: { id } }),
    update: (id: string, body: B<'updateContact'>, opts?: Opts) =>
      this.api.updateContact({ ...opts, path: { id }, body }),
    erase: (id: string, opts?: Opts) => this.api.eraseContact({ ...opts, path: { id } }),
    conversations: (id: string, query?: Q<'listContactConversations'>, opts?: Opts) =>
      this.api.listContactConversations({ ...opts, path: { id }, query }),
    timeline: (id: string, query?: Q<'getContactTimeline'>, opts?: Opts) =>
      this.api.getContactTimeline({ ...opts, path: { id }, query }),
    merge: (id: string, body: B<'mergeContacts'>, opts?: Opts) =>
      this.api.mergeContacts({ ...opts, path: { id }, body }),
    unmerge: (id: string, body: B<'unmergeContact'>, opts?: Opts) =>
      this.api.unmergeContact({ ...opts, path: { id }, body }),
    suggestions: (opts?: Opts) => this.api.listMergeSuggestions(opts),
  };

  readonly webhooks = {
    list: (query?: Q<'listWebhooks'>, opts?: Opts) => this.api.listWebhooks({ ...opts, query }),
    /** The answer carries the signing `secret`, shown this once. */
    create: (body: B<'createWebhook'>, opts?: Opts) => this.api.createWebhook({ ...opts, body }),
    get: (id: string, opts?: Opts): Promise<Webhook> => this.api.getWebhook({ ...opts, path: { id } }),
    update: (id: string, body: B<'updateWebhook'>, opts?: Opts) =>
      this.api.updateWebhook({ ...opts, path: { id }, body }),
    delete: (id: string, opts?: Opts) => this.api.deleteWebhook({ ...opts, path: { id } }),
    /** Queues a `ping` delivery. */
    test: (id: string, opts?: Opts): Promise<Delivery> => this.api.pingWebhook({ ...opts, path: { id } }),
    deliveries: (id: string, query?: Q<'listDeliveries'>, opts?: Opts) =>
      this.api.listDeliveries({ ...opts, path: { id }, query }),
  };

  // ------------------------------------------------------------------ transport

  #paginate(
    method: string,
    path: string,
    opts: RawOptions,
  ): Paginator<unknown, { items: unknown[]; cursor: string | null }> {
    const { cursor, ...rest } = opts.query ?? {};
    return new Paginator(
      (next) =>
        this.#send(method, path, { ...opts, query: { ...rest, cursor: next } }) as Promise<{
          items: unknown[];
          cursor: string | null;
        }>,
      typeof cursor === 'string' && cursor !== '' ? cursor : undefined,
    );
  }

  /** Milliseconds before retry `attempt` (0-based): equal jitter on a doubling ceiling, or the
   * gateway's `Retry-After` (capped) plus up to 10 % so clients told the same time spread out. */
  #delay(attempt: number, retryAfter: number | undefined): number {
    if (retryAfter !== undefined && retryAfter > 0) {
      const wait = Math.min(retryAfter, this.#maxRetryAfterMs);
      return wait + Math.random() * 0.1 * wait;
    }
    const ceiling = Math.min(this.#backoffMaxMs, this.#backoffBaseMs * 2 ** attempt);
    return ceiling / 2 + Math.random() * (ceiling / 2);
  }

  async #send(method: string, template: string, opts: RawOptions): Promise<unknown> {
    const url = `${this.baseUrl}${fillPath(template, opts.path)}${queryString(opts.query)}`;
    const headers: Record<string, string> = {
      Accept: 'application/json, application/problem+json',
      'User-Agent': `switchboard-typescript/${VERSION}`,
      ...opts.headers,
      Authorization: `Bearer ${this.#apiKey}`,
    };
    let body: string | undefined;
    if (opts.body !== undefined) {
      body = JSON.stringify(opts.body);
      headers['Content-Type'] = 'application/json';
    }
    const write = method !== 'GET' && method !== 'HEAD';
    if (write) headers['Idempotency-Key'] = opts.idempotencyKey ?? crypto.randomUUID();
    const retries = Math.max(0, opts.retries ?? this.retries);
    const timeoutMs = opts.timeoutMs ?? this.timeoutMs;
    const where = `${method} ${url.split('?')[0]}`;
    for (let attempt = 0; ; attempt++) {
      let failure: SwitchboardError;
      let waitHint: number | undefined;
      const res = await this.#attempt(url, { method, headers, body }, timeoutMs, opts.signal).catch(
        (err: unknown) => {
          // The caller's own cancellation is not retried.
          if (opts.signal?.aborted) throw opts.signal.reason;
          return err instanceof Error ? err : new Error(String(err));
        },
      );
      if (res instanceof Error) {
        failure = new SwitchboardConnectionError(`${where}: ${res.message}`, { cause: res });
      } else if (res.status >= 200 && res.status < 300) {
        return read(res);
      } else {
        waitHint = retryAfterMs(res.headers.get('Retry-After'));
        failure = errorFor(
          res.status,
          problemOf(res.bytes),
          res.headers.get('X-Request-Id') ?? undefined,
          waitHint === undefined ? undefined : waitHint / 1000,
        );
        if (waitHint === undefined && failure.retryAfter !== undefined) waitHint = failure.retryAfter * 1000;
        const retryable =
          RETRY_STATUSES.has(res.status) ||
          (write && res.status === 409 && failure.code === 'GW_ERR_IDEMPOTENCY_IN_FLIGHT');
        if (!retryable) throw failure;
      }
      if (attempt >= retries) throw failure;
      await this.#sleep(this.#delay(attempt, waitHint), opts.signal);
    }
  }

  /** One attempt, its answer read whole within the timeout (a stalled body is a failed attempt). */
  async #attempt(
    url: string,
    init: { method: string; headers: Record<string, string>; body: string | undefined },
    timeoutMs: number,
    signal: AbortSignal | undefined,
  ): Promise<Answer> {
    const controller = new AbortController();
    const onAbort = () => controller.abort(signal?.reason);
    if (signal?.aborted) onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    const timer =
      timeoutMs > 0
        ? setTimeout(() => controller.abort(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs)
        : undefined;
    try {
      const res = await this.#fetch(url, { ...init, signal: controller.signal });
      return { status: res.status, headers: res.headers, bytes: new Uint8Array(await res.arrayBuffer()) };
    } catch (err) {
      if (controller.signal.aborted && !signal?.aborted) throw controller.signal.reason;
      throw err;
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    }
  }
}

interface Answer {
  status: number;
  headers: Headers;
  bytes: Uint8Array;
}

/** A 2xx body: JSON parsed, an empty one undefined, anything else (a download) as bytes. */
function read(res: Answer): unknown {
  if (res.bytes.length === 0) return undefined;
  if (JSON_MEDIA.test(res.headers.get('Content-Type') ?? ''))
    return JSON.parse(new TextDecoder().decode(res.bytes));
  return res.bytes;
}

/** The problem document of a refusal; `{}` when the body is not a JSON object. */
function problemOf(bytes: Uint8Array): Problem {
  try {
    const parsed: unknown = JSON.parse(new TextDecoder().decode(bytes));
    return typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed) ? (parsed as Problem) : {};
  } catch {
    return {};
  }
}
