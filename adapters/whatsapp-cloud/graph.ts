/**
 * @module A small Graph API client for the Cloud API: `POST /{version}/{phone-number-id}/messages`,
 * `GET /{version}/{media-id}` and the media download, each with `Authorization: Bearer <token>` (the
 * token is never logged). 429, 5xx and connection failures are retried with backoff, honouring
 * `Retry-After`; what is left is a {@link GraphError} carrying Meta's error code.
 *
 * Sources: Meta "Send messages" and "Media" references
 * (https://developers.facebook.com/documentation/business-messaging/whatsapp/reference/media/media-api/)
 * and "Graph API error handling" (https://developers.facebook.com/docs/graph-api/guides/error-handling):
 * errors are `{ "error": { "message", "type", "code", "error_subcode", "error_data": { "details" },
 * "fbtrace_id" } }`.
 */
import type { Logger } from 'pino';
import { fullJitter, parseRetryAfter, sleep } from '../../src/core/index.js';

export interface RetryPolicy {
  /** Attempts per request, the first included. @default 4 */
  attempts: number;
  /** Base of the exponential full-jitter backoff. @default 500 */
  baseMs: number;
  /** Cap of one backoff delay. @default 8000 */
  capMs: number;
  /** Longest `Retry-After` honoured; a longer one ends the retries at once. @default 20000 */
  maxRetryAfterMs: number;
  /** Per-attempt timeout. A timed-out send is not retried: Meta may have accepted it. @default 15000 */
  timeoutMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = {
  attempts: 4,
  baseMs: 500,
  capMs: 8_000,
  maxRetryAfterMs: 20_000,
  timeoutMs: 15_000,
};

/**
 * Graph API error codes that mean "slow down" whatever the HTTP status (Meta answers some rate limits
 * with 400): 4 (app call limit), 80007 (WABA rate limit), 130429 (throughput), 131056 (pair rate).
 */
const RATE_LIMIT_CODES = new Set(['4', '80007', '130429', '131056']);

/** A Graph API refusal (or a transient failure retried until the policy gave up). */
export class GraphError extends Error {
  readonly status: number;
  readonly code: string | undefined;
  readonly details: string | undefined;
  readonly transient: boolean;
  constructor(status: number, code: string | undefined, message: string, details?: string) {
    super(message);
    this.name = 'GraphError';
    this.status = status;
    this.code = code;
    this.details = details;
    this.transient = status === 429 || status >= 500 || (code !== undefined && RATE_LIMIT_CODES.has(code));
  }
}

export interface GraphClientOptions {
  apiUrl: string;
  apiVersion: string;
  accessToken: string;
  logger: Logger;
  policy?: RetryPolicy;
  /**
   * Told when Meta answers a number's send with 130429 (throughput exceeded) and it is retried after
   * `untilMs`: the gateway holds that number's other sends until then, in every process.
   */
  onThrottled?: (phoneNumberId: string, untilMs: number) => void;
}

/** What `GET /{media-id}` answers. */
export interface MediaInfo {
  url: string;
  mimeType?: string;
  fileSize?: number;
}

export class GraphClient {
  readonly #base: string;
  readonly #token: string;
  readonly #logger: Logger;
  readonly #policy: RetryPolicy;
  readonly #onThrottled: GraphClientOptions['onThrottled'];

  constructor(opts: GraphClientOptions) {
    this.#onThrottled = opts.onThrottled;
    this.#base = `${opts.apiUrl}/${opts.apiVersion}`;
    this.#token = opts.accessToken;
    this.#logger = opts.logger;
    this.#policy = opts.policy ?? DEFAULT_RETRY;
  }

  /** Sends one message object; returns the `wamid` Meta assigned. */
  async sendMessage(phoneNumberId: string, payload: Record<string, unknown>): Promise<string> {
    const res = await this.#request(`${this.#base}/${encodeURIComponent(phoneNumberId)}/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ messaging_product: 'whatsapp', recipient_type: 'individual', ...payload }),
      // A send that timed out may have been accepted; sending it again could duplicate it.
      retryTimeouts: false,
      throttleKey: phoneNumberId,
    });
    const body = (await res.json().catch(() => undefined)) as { messages?: { id?: unknown }[] } | undefined;
    const id = body?.messages?.[0]?.id;
    if (typeof id !== 'string' || id === '') {
      throw new GraphError(
        res.status,
        undefined,
        'The Graph API accepted the message but returned no message id',
      );
    }
    return id;
  }

  /**
   * Sends a status object (`status: "read"`, with or without a typing indicator) to the messages
   * endpoint: one attempt, no retries, since a late indicator is worse than none.
   */
  async sendStatus(phoneNumberId: string, payload: Record<string, unknown>): Promise<void> {
    const res = await this.#request(`${this.#base}/${encodeURIComponent(phoneNumberId)}/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ messaging_product: 'whatsapp', ...payload }),
      once: true,
    });
    await res.body?.cancel();
  }

  /** `GET /{media-id}`: the short-lived download URL (valid for 5 minutes) and the file's type and size. */
  async mediaInfo(mediaId: string): Promise<MediaInfo> {
    const res = await this.#request(`${this.#base}/${encodeURIComponent(mediaId)}`, { method: 'GET' });
    const body = (await res.json().catch(() => undefined)) as
      | { url?: unknown; mime_type?: unknown; file_size?: unknown }
      | undefined;
    if (typeof body?.url !== 'string' || !/^https?:\/\//i.test(body.url)) {
      throw new GraphError(res.status, undefined, 'The Graph API returned no download URL for the media');
    }
    const size = Number(body.file_size);
    return {
      url: body.url,
      ...(typeof body.mime_type === 'string' ? { mimeType: body.mime_type } : {}),
      ...(Number.isFinite(size) && size >= 0 ? { fileSize: size } : {}),
    };
  }

  /**
   * Downloads media from a URL `mediaInfo` returned; the URL only answers with the bearer token. Reads
   * at most `maxBytes`: a larger file is refused without reading the rest.
   */
  async download(url: string, maxBytes: number): Promise<{ content: Buffer; contentType?: string }> {
    const res = await this.#request(url, { method: 'GET' });
    const declared = Number(res.headers.get('content-length'));
    if (Number.isFinite(declared) && declared > maxBytes) {
      await res.body?.cancel();
      throw new MediaTooLargeError(declared, maxBytes);
    }
    const chunks: Buffer[] = [];
    let size = 0;
    if (res.body) {
      for await (const chunk of res.body) {
        size += chunk.length;
        if (size > maxBytes) throw new MediaTooLargeError(size, maxBytes);
        chunks.push(Buffer.from(chunk));
      }
    }
    const contentType = res.headers.get('content-type') ?? undefined;
    return { content: Buffer.concat(chunks), ...(contentType ? { contentType } : {}) };
  }

  async #request(
    url: string,
    init: {
      method: string;
      headers?: Record<string, string>;
      body?: string;
      retryTimeouts?: boolean;
      /** A single attempt, whatever the policy says. */
      once?: boolean;
      /** The phone number id a 130429 (throughput) is reported for. */
      throttleKey?: string;
    },
  ): Promise<Response> {
    const { baseMs, capMs, maxRetryAfterMs, timeoutMs } = this.#policy;
    const attempts = init.once ? 1 : this.#policy.attempts;
    const path = new URL(url).pathname;
    for (let attempt = 1; ; attempt++) {
      let res: Response;
      try {
        res = await fetch(url, {
          method: init.method,
          headers: { ...init.headers, authorization: `Bearer ${this.#token}` },
          body: init.body,
          redirect: 'error',
          signal: AbortSignal.timeout(timeoutMs),
        });
      } catch (err) {
        const timedOut = (err as Error).name === 'TimeoutError';
        const retry = attempt < attempts && (!timedOut || init.retryTimeouts !== false);
        const reason = timedOut ? `timed out after ${timeoutMs} ms` : causeOf(err);
        if (!retry) throw new GraphError(0, undefined, `Could not reach the Graph API: ${reason}`);
        const delay = fullJitter(attempt, baseMs, capMs);
        this.#logger.info({ attempt, path, reason, delayMs: delay }, 'Graph API unreachable; retrying');
        await sleep(delay);
        continue;
      }
      if (res.ok) return res;
      const error = await errorOf(res);
      const retryAfter = parseRetryAfter(res.headers.get('retry-after') ?? undefined);
      if (
        !error.transient ||
        attempt >= attempts ||
        (retryAfter !== undefined && retryAfter > maxRetryAfterMs)
      ) {
        throw error;
      }
      const delay = retryAfter ?? fullJitter(attempt, baseMs, capMs);
      if (error.code === '130429' && init.throttleKey)
        this.#onThrottled?.(init.throttleKey, Date.now() + delay);
      this.#logger.info(
        { attempt, path, status: res.status, code: error.code, delayMs: delay },
        'Graph API answered a transient error; retrying',
      );
      await sleep(delay);
    }
  }
}

/** Media larger than `WHATSAPP_MEDIA_MAX_BYTES`. */
export class MediaTooLargeError extends Error {
  constructor(size: number, max: number) {
    super(`The media is larger than WHATSAPP_MEDIA_MAX_BYTES (${size} > ${max} bytes)`);
    this.name = 'MediaTooLargeError';
  }
}

async function errorOf(res: Response): Promise<GraphError> {
  const text = await res.text().catch(() => '');
  let error: { message?: unknown; code?: unknown; error_data?: { details?: unknown } } | undefined;
  try {
    error = (JSON.parse(text) as { error?: typeof error }).error;
  } catch {
    error = undefined;
  }
  const code =
    typeof error?.code === 'number' || typeof error?.code === 'string' ? String(error.code) : undefined;
  const message = typeof error?.message === 'string' ? error.message : `HTTP ${res.status}`;
  const details = typeof error?.error_data?.details === 'string' ? error.error_data.details : undefined;
  return new GraphError(res.status, code, message, details);
}

function causeOf(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (err as Error).message;
}
