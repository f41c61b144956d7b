/**
 * @module The bot the engine calls, following the bot configuration (SPEC §10) while running: the
 * demo bot while no URL is configured, else one {@link HttpBot} that is reconfigured in place, so its
 * circuit breaker (and its count of failures) lives on across changes of timeout, attempts or
 * breaker settings. A change of URL resets the breaker (see {@link HttpBot.configure}). It also keeps
 * what `GET /v1/bot/health` reports of this process: the last error and the recent latency.
 */
import { DEFAULTS } from '../../config/defaults.js';
import { DemoBot } from '../pipeline/bot/demo.js';
import { type AttemptReport, HttpBot, type ProbeResult } from '../pipeline/bot/http.js';
import type { Bot, BotRequest, BotResponse } from '../pipeline/bot/types.js';
import type { BreakerState } from '../pipeline/breaker.js';
import type { BotSettings } from './schema.js';

/** Attempts whose latency `health()` summarizes. */
const LATENCY_WINDOW = 100;

export interface BotHealth {
  bot: 'http' | 'demo';
  url: string | null;
  breaker: {
    state: BreakerState;
    consecutiveFailures: number;
    threshold: number;
    cooldownMs: number;
    openedAt: string | null;
  };
  lastError: { code: string; message: string; at: string } | null;
  lastSuccessAt: string | null;
  /** Over the last attempts of this process (at most {@link LATENCY_WINDOW}); null before the first. */
  latency: { samples: number; p50Ms: number; p95Ms: number; maxMs: number } | null;
}

/** The nearest-rank percentile of sorted values. */
function percentile(sorted: readonly number[], p: number): number {
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1]!;
}

const round = (ms: number) => Math.round(ms * 100) / 100;

export class ConfiguredBot implements Bot {
  readonly #demo = new DemoBot();
  #http: HttpBot | null = null;
  #settings: BotSettings;
  readonly #latencies: number[] = [];
  #lastError: BotHealth['lastError'] = null;
  #lastSuccessAt: string | null = null;

  constructor(settings: BotSettings) {
    this.#settings = settings;
    this.apply(settings);
  }

  get kind(): 'demo' | 'http' {
    return this.#active() ? 'http' : 'demo';
  }

  /** Follows new settings from the next message on; a message under way finishes with the old ones. */
  apply(settings: BotSettings): void {
    this.#settings = settings;
    if (settings.url === null || settings.secret === null) return;
    const live = {
      url: settings.url,
      secret: settings.secret,
      timeoutMs: settings.timeoutMs,
      maxAttempts: settings.maxAttempts,
      breakerThreshold: settings.breaker.threshold,
      breakerCooldownMs: settings.breaker.cooldownMs,
    };
    if (this.#http) {
      const urlChanged = this.#http.url !== settings.url;
      this.#http.configure(live);
      // The figures were about another bot.
      if (urlChanged) this.#forgetStats();
    } else {
      this.#http = new HttpBot({
        ...live,
        maxResponseBytes: DEFAULTS.BOT_MAX_RESPONSE_BYTES,
        onAttempt: (report) => this.#record(report),
      });
    }
  }

  reply(request: BotRequest, signal: AbortSignal): Promise<BotResponse> {
    const http = this.#active();
    return http ? http.reply(request, signal) : this.#demo.reply(request);
  }

  circuitOpen(): boolean {
    return this.#active()?.circuitOpen() ?? false;
  }

  /** One signed request to the bot, outside the breaker (`POST /v1/bot/test`); the demo bot answers itself. */
  async probe(request: BotRequest & { test: true }, signal: AbortSignal): Promise<ProbeResult> {
    const http = this.#active();
    if (!http) {
      const started = performance.now();
      const response = await this.#demo.reply(request);
      return { latencyMs: round(performance.now() - started), response };
    }
    return http.probe(request.message.id, { type: 'message.created', ...request }, signal);
  }

  health(): BotHealth {
    const http = this.#active();
    const sorted = [...this.#latencies].sort((a, b) => a - b);
    const breaker = http?.breaker;
    const openedAt = breaker?.openedAt ?? null;
    return {
      bot: http ? 'http' : 'demo',
      url: http ? http.url : null,
      breaker: {
        state: breaker?.state ?? 'closed',
        consecutiveFailures: breaker?.failures ?? 0,
        threshold: this.#settings.breaker.threshold,
        cooldownMs: this.#settings.breaker.cooldownMs,
        openedAt: openedAt === null ? null : new Date(openedAt).toISOString(),
      },
      lastError: this.#lastError,
      lastSuccessAt: this.#lastSuccessAt,
      latency:
        sorted.length === 0
          ? null
          : {
              samples: sorted.length,
              p50Ms: round(percentile(sorted, 50)),
              p95Ms: round(percentile(sorted, 95)),
              maxMs: round(sorted[sorted.length - 1]!),
            },
    };
  }

  /** The HTTP bot while the settings name one. */
  #active(): HttpBot | null {
    return this.#settings.url !== null && this.#settings.secret !== null ? this.#http : null;
  }

  #record(report: AttemptReport): void {
    this.#latencies.push(report.ms);
    if (this.#latencies.length > LATENCY_WINDOW) this.#latencies.shift();
    const at = new Date().toISOString();
    if (report.error) this.#lastError = { code: report.error.code, message: report.error.message, at };
    else this.#lastSuccessAt = at;
  }

  #forgetStats(): void {
    this.#latencies.length = 0;
    this.#lastError = null;
    this.#lastSuccessAt = null;
  }
}
