/**
 * @module The HTTP bot (SPEC §6): each message is POSTed as JSON to `BOT_URL`, signed with `BOT_SECRET`
 * in the Standard Webhooks scheme. Timeouts, connection errors, 429 and 5xx are retried with full-jitter
 * backoff; consecutive failed messages open a circuit breaker so a dead bot costs nothing per message.
 */
import { Webhook } from 'standardwebhooks';
import { fullJitter, parseRetryAfter, sleep } from '../../core/backoff.js';
import { CircuitBreaker } from '../breaker.js';
import { type Bot, BotError, type BotRequest, type BotResponse, botResponseSchema } from './types.js';

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
}

export class HttpBot implements Bot {
  readonly kind = 'http' as const;
  readonly breaker: CircuitBreaker;
  readonly #opts: Required<HttpBotOptions>;
  readonly #signer: Webhook;

  constructor(opts: HttpBotOptions) {
    this.#opts = { retryBaseMs: 200, retryCapMs: 5_000, ...opts };
    this.#signer = new Webhook(opts.secret);
    this.breaker = new CircuitBreaker({
      threshold: opts.breakerThreshold,
      cooldownMs: opts.breakerCooldownMs,
    });
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

  async #withRetries(request: BotRequest, signal: AbortSignal): Promise<BotResponse> {
    // One webhook-id for every attempt of this message: the bot can deduplicate retries. The message
    // id already carries its `msg_` prefix.
    const webhookId = request.message.id;
    const body = JSON.stringify({ type: 'message.created', ...request });
    for (let attempt = 1; ; attempt++) {
      let retryAfterMs: number | undefined;
      try {
        return await this.#attempt(webhookId, body, signal);
      } catch (err) {
        if (
          !(err instanceof BotError) ||
          !err.retryable ||
          attempt >= this.#opts.maxAttempts ||
          signal.aborted
        ) {
          throw err;
        }
        retryAfterMs = (err as BotError & { retryAfterMs?: number }).retryAfterMs;
      }
      const delay = retryAfterMs ?? fullJitter(attempt, this.#opts.retryBaseMs, this.#opts.retryCapMs);
      await sleep(Math.min(delay, this.#opts.retryCapMs), signal);
    }
  }

  async #attempt(webhookId: string, body: string, signal: AbortSignal): Promise<BotResponse> {
    const timestamp = new Date();
    const headers = {
      'content-type': 'application/json',
      'user-agent': 'Switchboard/1',
      'webhook-id': webhookId,
      'webhook-timestamp': String(Math.floor(timestamp.getTime() / 1000)),
      'webhook-signature': this.#signer.sign(webhookId, timestamp, body),
    };
    const timeout = AbortSignal.timeout(this.#opts.timeoutMs);
    let res: Response;
    try {
      res = await fetch(this.#opts.url, {
        method: 'POST',
        headers,
        body,
        redirect: 'error',
        signal: AbortSignal.any([signal, timeout]),
      });
    } catch (err) {
      if (signal.aborted) throw err;
      if (timeout.aborted) {
        throw new BotError('BOT_TIMEOUT', `The bot did not answer within ${this.#opts.timeoutMs} ms`, true, {
          cause: err,
        });
      }
      throw new BotError('BOT_UNREACHABLE', `The bot could not be reached: ${(err as Error).message}`, true, {
        cause: err,
      });
    }
    const text = await this.#readCapped(res, signal, timeout);
    if (res.status === 429 || res.status >= 500) {
      const error = new BotError('BOT_HTTP_ERROR', `The bot answered HTTP ${res.status}`, true);
      Object.assign(error, { retryAfterMs: parseRetryAfter(res.headers.get('retry-after')) });
      throw error;
    }
    if (res.status < 200 || res.status >= 300) {
      throw new BotError('BOT_HTTP_ERROR', `The bot answered HTTP ${res.status}`, false);
    }
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new BotError('BOT_BAD_RESPONSE', 'The bot answered with a body that is not JSON', false);
    }
    const parsed = botResponseSchema.safeParse(json);
    if (!parsed.success) {
      const where = parsed.error.issues[0];
      throw new BotError(
        'BOT_BAD_RESPONSE',
        `The bot answered with the wrong shape: ${where?.path.join('.') || '(root)'} ${where?.message ?? ''}`.trim(),
        false,
      );
    }
    return parsed.data;
  }

  /** Reads the body, refusing more than `maxResponseBytes` (a runaway bot cannot fill memory). */
  async #readCapped(res: Response, signal: AbortSignal, timeout: AbortSignal): Promise<string> {
    const declared = Number(res.headers.get('content-length') ?? '0');
    if (declared > this.#opts.maxResponseBytes) {
      await res.body?.cancel();
      throw new BotError('BOT_RESPONSE_TOO_LARGE', `The bot answered with ${declared} bytes`, false);
    }
    const chunks: Uint8Array[] = [];
    let size = 0;
    try {
      for await (const chunk of res.body ?? []) {
        size += chunk.byteLength;
        if (size > this.#opts.maxResponseBytes) {
          await res.body?.cancel().catch(() => undefined);
          throw new BotError(
            'BOT_RESPONSE_TOO_LARGE',
            `The bot answered with more than ${this.#opts.maxResponseBytes} bytes`,
            false,
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
