/**
 * @module The HTTP bot (SPEC §6): each message is POSTed as JSON to `BOT_URL`, signed with `BOT_SECRET`
 * in the Standard Webhooks scheme. Timeouts, connection errors, 429 and 5xx are retried with full-jitter
 * backoff; consecutive failed messages open a circuit breaker so a dead bot costs nothing per message.
 * The settings can change while running ({@link HttpBot.configure}, the bot configuration of SPEC §10):
 * each message is worked with the settings of when it started, the next one with the new ones.
 */
import { Webhook } from 'standardwebhooks';
import { fullJitter, parseRetryAfter, sleep } from '../../core/backoff.js';
import { injectTraceContext } from '../../tracing/index.js';
import { CircuitBreaker } from '../breaker.js';
import {
  type Bot,
  BotError,
  type BotErrorCode,
  type BotRequest,
  type BotResponse,
  botResponseSchema,
} from './types.js';

export interface HttpBotOptions {
  url: string;
  secret: string;
  timeoutMs: number;
  maxAttempts: number;
  breakerThreshold: number;
  breakerCooldownMs: number;
  maxResponseBytes: number;
  /** Backoff base and cap between attempts. */
  retryBaseMs?: number;
  retryCapMs?: number;
  /** Told of every attempt of a message (not of {@link HttpBot.probe}): health and latency. */
  onAttempt?: (report: AttemptReport) => void;
}

/** The settings {@link HttpBot.configure} may change while running. */
export type LiveHttpBotOptions = Pick<
  HttpBotOptions,
  'url' | 'secret' | 'timeoutMs' | 'maxAttempts' | 'breakerThreshold' | 'breakerCooldownMs'
>;

/** One attempt's outcome: how long the bot took, and the error when it failed. */
export interface AttemptReport {
  ms: number;
  error?: BotError;
}

/** What one probe ({@link HttpBot.probe}) found. */
export interface ProbeResult {
  /** The bot's HTTP status; absent when it never answered (timeout, connection refused). */
  status?: number;
  latencyMs: number;
  response?: BotResponse;
  error?: { code: BotErrorCode; message: string };
}

interface Settings {
  opts: Required<Omit<HttpBotOptions, 'onAttempt'>>;
  signer: Webhook;
}

export class HttpBot implements Bot {
  readonly kind = 'http' as const;
  readonly breaker: CircuitBreaker;
  #settings: Settings;
  readonly #onAttempt: ((report: AttemptReport) => void) | undefined;

  constructor(opts: HttpBotOptions) {
    const { onAttempt, ...rest } = opts;
    this.#settings = {
      opts: { retryBaseMs: 200, retryCapMs: 5_000, ...rest },
      signer: new Webhook(opts.secret),
    };
    this.#onAttempt = onAttempt;
    this.breaker = new CircuitBreaker({
      threshold: opts.breakerThreshold,
      cooldownMs: opts.breakerCooldownMs,
    });
  }

  /** The URL requests go to now. */
  get url(): string {
    return this.#settings.opts.url;
  }

  /**
   * Applies new settings from the next message on. A new URL resets the breaker: the failures counted
   * were another bot's (or another deployment's), and say nothing about the one now configured.
   * @throws Error when `secret` is not a Standard Webhooks secret (checked before anything changes).
   */
  configure(next: LiveHttpBotOptions): void {
    const current = this.#settings.opts;
    const signer = next.secret === current.secret ? this.#settings.signer : new Webhook(next.secret);
    this.breaker.configure({ threshold: next.breakerThreshold, cooldownMs: next.breakerCooldownMs });
    if (next.url !== current.url) this.breaker.reset();
    this.#settings = { opts: { ...current, ...next }, signer };
  }

  circuitOpen(): boolean {
    return this.breaker.state === 'open';
  }

  async reply(request: BotRequest, signal: AbortSignal): Promise<BotResponse> {
    if (!this.breaker.tryAcquire()) {
      throw new BotError(
        'BOT_CIRCUIT_OPEN',
        'The bot circuit breaker is open after repeated failures',
        false,
      );
    }
    try {
      const response = await this.#withRetries(request, signal);
      this.breaker.success();
      return response;
    } catch (err) {
      // A lost lease (abort from the engine) says nothing about the bot's health.
      if (!signal.aborted) this.breaker.failure();
      throw err;
    }
  }

  /**
   * Sends one signed request, exactly as a message's first attempt is signed, and reports what came
   * back: no retries, and neither the breaker nor the attempt observer hears of it.
   */
  async probe(
    webhookId: string,
    payload: Record<string, unknown>,
    signal: AbortSignal,
  ): Promise<ProbeResult> {
    const settings = this.#settings;
    const started = performance.now();
    const latency = () => Math.round((performance.now() - started) * 100) / 100;
    try {
      const { status, response } = await this.#attempt(settings, webhookId, JSON.stringify(payload), signal);
      return { status, latencyMs: latency(), response };
    } catch (err) {
      if (!(err instanceof BotError)) throw err;
      return {
        ...(err.status !== undefined ? { status: err.status } : {}),
        latencyMs: latency(),
        error: { code: err.code, message: err.message },
      };
    }
  }

  async #withRetries(request: BotRequest, signal: AbortSignal): Promise<BotResponse> {
    // The settings of when this message started, for all of its attempts.
    const settings = this.#settings;
    const { opts } = settings;
    // One webhook-id for every attempt of this message: the bot can deduplicate retries. The message
    // id already carries its `msg_` prefix.
    const webhookId = request.message.id;
    const body = JSON.stringify({ type: 'message.created', ...request });
    for (let attempt = 1; ; attempt++) {
      let retryAfterMs: number | undefined;
      try {
        return await this.#observed(settings, webhookId, body, signal);
      } catch (err) {
        if (!(err instanceof BotError) || !err.retryable || attempt >= opts.maxAttempts || signal.aborted) {
          throw err;
        }
        retryAfterMs = (err as BotError & { retryAfterMs?: number }).retryAfterMs;
      }
      const delay = retryAfterMs ?? fullJitter(attempt, opts.retryBaseMs, opts.retryCapMs);
      await sleep(Math.min(delay, opts.retryCapMs), signal);
    }
  }

  /** One attempt, reported to the observer (unless the engine aborted it: that says nothing of the bot). */
  async #observed(
    settings: Settings,
    webhookId: string,
    body: string,
    signal: AbortSignal,
  ): Promise<BotResponse> {
    const started = performance.now();
    try {
      const { response } = await this.#attempt(settings, webhookId, body, signal);
      this.#onAttempt?.({ ms: performance.now() - started });
      return response;
    } catch (err) {
      if (err instanceof BotError && !signal.aborted) {
        this.#onAttempt?.({ ms: performance.now() - started, error: err });
      }
      throw err;
    }
  }

  async #attempt(
    { opts, signer }: Settings,
    webhookId: string,
    body: string,
    signal: AbortSignal,
  ): Promise<{ status: number; response: BotResponse }> {
    const timestamp = new Date();
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'user-agent': 'Switchboard/1',
      'webhook-id': webhookId,
      'webhook-timestamp': String(Math.floor(timestamp.getTime() / 1000)),
      'webhook-signature': signer.sign(webhookId, timestamp, body),
    };
    // SPEC §12: the `bot.call` span's W3C trace context, while tracing is on.
    injectTraceContext(headers);
    const timeout = AbortSignal.timeout(opts.timeoutMs);
    let res: Response;
    try {
      res = await fetch(opts.url, {
        method: 'POST',
        headers,
        body,
        redirect: 'error',
        signal: AbortSignal.any([signal, timeout]),
      });
    } catch (err) {
      if (signal.aborted) throw err;
      if (timeout.aborted) {
        throw new BotError('BOT_TIMEOUT', `The bot did not answer within ${opts.timeoutMs} ms`, true, {
          cause: err,
        });
      }
      throw new BotError('BOT_UNREACHABLE', `The bot could not be reached: ${(err as Error).message}`, true, {
        cause: err,
      });
    }
    const { status } = res;
    const text = await this.#readCapped(res, opts.maxResponseBytes, signal, timeout);
    if (status === 429 || status >= 500) {
      const error = new BotError('BOT_HTTP_ERROR', `The bot answered HTTP ${status}`, true, { status });
      Object.assign(error, { retryAfterMs: parseRetryAfter(res.headers.get('retry-after')) });
      throw error;
    }
    if (status < 200 || status >= 300) {
      throw new BotError('BOT_HTTP_ERROR', `The bot answered HTTP ${status}`, false, { status });
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new BotError('BOT_BAD_RESPONSE', 'The bot answered with a body that is not JSON', false, {
        status,
      });
    }
    const parsed = botResponseSchema.safeParse(json);
    if (!parsed.success) {
      const where = parsed.error.issues[0];
      throw new BotError(
        'BOT_BAD_RESPONSE',
        `The bot answered with the wrong shape: ${where?.path.join('.') || '(root)'} ${where?.message ?? ''}`.trim(),
        false,
        { status },
      );
    }
    return { status, response: parsed.data };
  }

  /** Reads the body, refusing more than `maxBytes` (a runaway bot cannot fill memory). */
  async #readCapped(
    res: Response,
    maxBytes: number,
    signal: AbortSignal,
    timeout: AbortSignal,
  ): Promise<string> {
    const declared = Number(res.headers.get('content-length') ?? '0');
    if (declared > maxBytes) {
      await res.body?.cancel();
      throw new BotError('BOT_RESPONSE_TOO_LARGE', `The bot answered with ${declared} bytes`, false, {
        status: res.status,
      });
    }
    const chunks: Uint8Array[] = [];
    let size = 0;
    try {
      for await (const chunk of res.body ?? []) {
        size += chunk.byteLength;
        if (size > maxBytes) {
          await res.body?.cancel().catch(() => undefined);
          throw new BotError(
            'BOT_RESPONSE_TOO_LARGE',
            `The bot answered with more than ${maxBytes} bytes`,
            false,
            {
              status: res.status,
            },
          );
        }
        chunks.push(chunk);
      }
    } catch (err) {
      if (err instanceof BotError || signal.aborted) throw err;
      if (timeout.aborted) throw new BotError('BOT_TIMEOUT', 'The bot timed out while answering', true);
      throw new BotError('BOT_UNREACHABLE', `The bot connection failed: ${(err as Error).message}`, true);
    }
    return Buffer.concat(chunks).toString('utf8');
  }
}
