/**
 * @module Outbound to Slack: `chat.postMessage` in the conversation's thread, quick replies as Block Kit
 * buttons, paced at one message per second per channel (the method's special rate tier,
 * https://docs.slack.dev/apis/web-api/rate-limits) without holding up other channels, `429` honoured
 * through `Retry-After`. The Web API is reached through the narrow {@link SlackApi} interface;
 * {@link createWebApi} backs it with the official `WebClient`.
 */
import {
  LogLevel,
  type Logger as SlackLogger,
  WebAPIHTTPError,
  WebAPIPlatformError,
  WebAPIRateLimitedError,
  WebAPIRequestError,
  WebClient,
} from '@slack/web-api';
import type { Logger } from 'pino';
import { CAPABILITIES } from '../../src/channels/capabilities.js';
import {
  type Conversation,
  type Message,
  PermanentSendError,
  type SendResult,
  sleep,
} from '../../src/core/index.js';
import { MemoryRateGate, type RateGate } from '../../src/pacing/index.js';
import type { SlackConfig } from './config.js';
import { parseChannelRef } from './inbound.js';

/** A Block Kit block, as sent in `blocks` (https://docs.slack.dev/reference/block-kit/blocks). */
export type SlackBlock = Record<string, unknown>;

export interface PostMessageArgs {
  channel: string;
  text: string;
  thread_ts?: string;
  blocks?: SlackBlock[];
  /** The name the post is shown under: an agent's (SPEC §8; needs the `chat:write.customize` scope). */
  username?: string;
}

/** The part of the Slack Web API the adapter uses; errors are {@link SlackCallError}s. */
export interface SlackApi {
  /** `chat.postMessage`; resolves with the posted message's `ts`. */
  postMessage(args: PostMessageArgs): Promise<string>;
  /** `chat.update`: replaces a posted message's text and blocks (the desk's handoff cards). */
  updateMessage?(args: { channel: string; ts: string; text: string; blocks?: SlackBlock[] }): Promise<void>;
  /** `auth.test`: who the bot token belongs to. */
  authTest(): Promise<{ userId: string; botId?: string; teamId?: string }>;
  /** `users.info`: the person's display name, if they have one. */
  userName(userId: string): Promise<string | undefined>;
  /** `users.info`: the display name and the profile email (SPEC §9), each if Slack gives one. */
  userInfo?(userId: string): Promise<{ name?: string; email?: string }>;
}

/** A failed Web API call, classified for the retry decision. */
export class SlackCallError extends Error {
  /** `rate_limited`: HTTP 429; `transient`: worth another try; `permanent`: Slack refused for good. */
  readonly kind: 'rate_limited' | 'transient' | 'permanent';
  /** Slack's error string (`channel_not_found`, `not_in_channel` ...) or a short code of ours. */
  readonly slackError: string;
  /** From `Retry-After`, for `rate_limited`. */
  readonly retryAfterMs: number | undefined;

  constructor(
    kind: SlackCallError['kind'],
    slackError: string,
    retryAfterMs?: number,
    options?: { cause?: unknown },
  ) {
    super(`Slack API error: ${slackError}`, options);
    this.name = 'SlackCallError';
    this.kind = kind;
    this.slackError = slackError;
    this.retryAfterMs = retryAfterMs;
  }
}

/** Platform errors that describe Slack's trouble, not the request's (chat.postMessage "Errors" table). */
const TRANSIENT_PLATFORM_ERRORS = new Set([
  'internal_error',
  'fatal_error',
  'service_unavailable',
  'request_timeout',
]);

function classify(err: unknown): SlackCallError {
  if (err instanceof SlackCallError) return err;
  if (err instanceof WebAPIRateLimitedError) {
    return new SlackCallError('rate_limited', 'ratelimited', err.retryAfter * 1000, { cause: err });
  }
  if (err instanceof WebAPIPlatformError) {
    const code = err.data.error;
    if (code === 'ratelimited') return new SlackCallError('rate_limited', code, undefined, { cause: err });
    return new SlackCallError(
      TRANSIENT_PLATFORM_ERRORS.has(code) ? 'transient' : 'permanent',
      code,
      undefined,
      {
        cause: err,
      },
    );
  }
  if (err instanceof WebAPIHTTPError) {
    return new SlackCallError(
      err.statusCode >= 500 ? 'transient' : 'permanent',
      `http_${err.statusCode}`,
      undefined,
      {
        cause: err,
      },
    );
  }
  if (err instanceof WebAPIRequestError)
    return new SlackCallError('transient', 'request_error', undefined, { cause: err });
  return new SlackCallError('transient', 'unknown_error', undefined, { cause: err });
}

/** Routes the WebClient's own log lines into the gateway's structured log. */
function slackLogger(logger: Logger): SlackLogger {
  const line = (args: unknown[]) => args.map(String).join(' ');
  return {
    debug: (...args) => logger.debug(line(args)),
    info: (...args) => logger.debug(line(args)),
    warn: (...args) => logger.warn(line(args)),
    error: (...args) => logger.error(line(args)),
    setLevel: () => undefined,
    getLevel: () => LogLevel.DEBUG,
    setName: () => undefined,
  };
}

/** Time allowed for lookups made while Slack waits for its 3-second ack (users.info, auth.test). */
const LOOKUP_TIMEOUT_MS = 1_500;
/** Time allowed for one chat.postMessage attempt. */
const POST_TIMEOUT_MS = 10_000;

/**
 * Backs {@link SlackApi} with `@slack/web-api`'s WebClient at `SLACK_API_URL`. The client's own retries
 * are off and rate-limited calls are rejected, so retries and `Retry-After` waits happen in
 * {@link SlackSender}, per channel: the client's built-in handling pauses every call of the client.
 */
export function createWebApi(config: SlackConfig, logger: Logger): SlackApi {
  const common = {
    slackApiUrl: config.apiUrl,
    retryConfig: { retries: 0 },
    rejectRateLimitedCalls: true,
    logger: slackLogger(logger),
    // Methods are the only URLs this adapter calls; absolute URLs would bypass SLACK_API_URL.
    allowAbsoluteUrls: false,
  };
  const poster = new WebClient(config.botToken, { ...common, timeout: POST_TIMEOUT_MS });
  const lookups = new WebClient(config.botToken, { ...common, timeout: LOOKUP_TIMEOUT_MS });
  return {
    async postMessage(args) {
      try {
        const res = await poster.chat.postMessage(args);
        if (!res.ts) throw new SlackCallError('permanent', 'missing_ts');
        return res.ts;
      } catch (err) {
        throw classify(err);
      }
    },
    async updateMessage(args) {
      try {
        await poster.chat.update(args);
      } catch (err) {
        throw classify(err);
      }
    },
    async authTest() {
      try {
        const res = await lookups.auth.test();
        if (!res.user_id) throw new SlackCallError('permanent', 'missing_user_id');
        return {
          userId: res.user_id,
          ...(res.bot_id ? { botId: res.bot_id } : {}),
          ...(res.team_id ? { teamId: res.team_id } : {}),
        };
      } catch (err) {
        throw classify(err);
      }
    },
    async userName(userId) {
      return (await this.userInfo!(userId)).name;
    },
    async userInfo(userId) {
      try {
        const res = await lookups.users.info({ user: userId });
        const u = res.user;
        const name = u?.profile?.display_name || u?.profile?.real_name || u?.real_name || u?.name;
        const email = u?.profile?.email;
        return { ...(name ? { name } : {}), ...(email ? { email } : {}) };
      } catch (err) {
        throw classify(err);
      }
    },
  };
}

// --- rendering -----------------------------------------------------------------------------------

/** Block Kit limits (https://docs.slack.dev/reference/block-kit/blocks/section-block, .../block-elements/button-element). */
const SECTION_TEXT_MAX = 3_000;
const BUTTON_TEXT_MAX = 75;
const BUTTON_VALUE_MAX = 2_000;
const ACTIONS_ELEMENTS_MAX = 25;
const BLOCKS_MAX = 50;

/**
 * Escapes the three characters Slack gives control meaning in message text
 * (https://docs.slack.dev/messaging/formatting-message-text#escaping): the bot writes plain text.
 */
export function escapeSlackText(text: string): string {
  return text.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;');
}

/** Builds the `chat.postMessage` arguments for a stored bot message in its Slack conversation. */
export function renderMessage(
  target: { channel: string; threadTs?: string },
  message: Message,
): PostMessageArgs {
  const links = message.attachments.map((a) => {
    const url = a.url.replaceAll('|', '%7C').replaceAll('>', '%3E');
    return a.name ? `<${url}|${escapeSlackText(a.name)}>` : `<${url}>`;
  });
  const text = [escapeSlackText(message.text), ...links].filter((s) => s !== '').join('\n');
  const args: PostMessageArgs = { channel: target.channel, text };
  if (target.threadTs) args.thread_ts = target.threadTs;
  // Slack caps a custom username at 80 characters (chat.postMessage `username`).
  if (CAPABILITIES.slack.agentName.value && message.type === 'agent' && message.name)
    args.username = message.name.slice(0, 80);
  const quickReplies = (message.quickReplies ?? []).slice(0, ACTIONS_ELEMENTS_MAX);
  if (quickReplies.length > 0) {
    const blocks: SlackBlock[] = [];
    for (let i = 0; i < text.length && blocks.length < BLOCKS_MAX - 1; i += SECTION_TEXT_MAX) {
      blocks.push({ type: 'section', text: { type: 'mrkdwn', text: text.slice(i, i + SECTION_TEXT_MAX) } });
    }
    blocks.push({
      type: 'actions',
      block_id: 'quick_replies',
      elements: quickReplies.map((q, i) => ({
        type: 'button',
        action_id: `quick_reply_${i}`,
        text: { type: 'plain_text', text: q.title.slice(0, BUTTON_TEXT_MAX), emoji: true },
        value: (q.payload ?? q.title).slice(0, BUTTON_VALUE_MAX),
      })),
    });
    args.blocks = blocks;
  }
  return args;
}

// --- pacing and retries --------------------------------------------------------------------------

/**
 * One send slot per channel every `intervalMs`, in this process: the in-memory rate gate of the pacing
 * room at a fixed interval. A slot is reserved synchronously, so concurrent sends to one channel queue
 * behind each other while sends to other channels never wait. {@link SlackSender} uses the shared
 * {@link RateGate} instead, which keeps the same spacing across processes.
 */
export class ChannelGate {
  readonly #gate: MemoryRateGate;
  readonly #intervalMs: number;

  constructor(intervalMs: number, now: () => number = Date.now) {
    this.#gate = new MemoryRateGate(now);
    this.#intervalMs = intervalMs;
  }

  /** Reserves the channel's next slot; returns how long the caller must wait for it. */
  reserve(channel: string): number {
    return this.#gate.slot(channel, this.#intervalMs);
  }

  /** Keeps the channel closed until `untilMs` (a `Retry-After`). */
  defer(channel: string, untilMs: number): void {
    this.#gate.shut(channel, untilMs);
  }
}

export interface SlackSenderOptions {
  /** Minimum time between two messages to one channel. @default 1000 */
  intervalMs?: number;
  /**
   * Where the channels' slots are kept: the pacing room's shared gate, so every process together keeps
   * one message per second per channel. @default an in-process gate
   */
  gate?: RateGate;
  /** Attempts per message, the first included. @default 4 */
  maxAttempts?: number;
  /** A `Retry-After` longer than this ends the attempts. @default 60000 */
  maxRetryAfterMs?: number;
  now?: () => number;
  sleep?: (ms: number) => Promise<void>;
  logger?: Logger;
}

/** Sends stored bot messages to Slack with per-channel pacing and retries. */
export class SlackSender {
  readonly #api: SlackApi;
  readonly #gate: RateGate;
  readonly #intervalMs: number;
  readonly #maxAttempts: number;
  readonly #maxRetryAfterMs: number;
  readonly #now: () => number;
  readonly #sleep: (ms: number) => Promise<void>;
  readonly #logger: Logger | undefined;

  constructor(api: SlackApi, opts: SlackSenderOptions = {}) {
    this.#api = api;
    this.#now = opts.now ?? Date.now;
    this.#gate = opts.gate ?? new MemoryRateGate(this.#now);
    this.#intervalMs = opts.intervalMs ?? 1_000;
    this.#maxAttempts = opts.maxAttempts ?? 4;
    this.#maxRetryAfterMs = opts.maxRetryAfterMs ?? 60_000;
    this.#sleep = opts.sleep ?? ((ms) => sleep(ms));
    this.#logger = opts.logger;
  }

  /** Posts `message` into the conversation's DM or thread; resolves with its `ts` as the external id. */
  async send(conversation: Conversation, message: Message): Promise<SendResult> {
    const target = parseChannelRef(conversation.channelRef);
    if (!target) {
      throw new PermanentSendError(
        `Not a Slack conversation key: ${conversation.channelRef}`,
        'invalid_channel_ref',
      );
    }
    const args = renderMessage(target, message);
    const key = `slack:${target.team}:${target.channel}`;
    for (let attempt = 1; ; attempt++) {
      const wait = await this.#gate.reserve(key, this.#intervalMs);
      if (wait > 0) await this.#sleep(wait);
      try {
        return { externalId: await this.#api.postMessage(args), status: 'sent' };
      } catch (err) {
        const e = err instanceof SlackCallError ? err : classify(err);
        const retryIn = this.#retryDelay(e, attempt);
        if (retryIn === undefined) {
          throw new PermanentSendError(`Slack chat.postMessage failed: ${e.slackError}`, e.slackError, {
            cause: e,
          });
        }
        this.#logger?.warn(
          { channel: target.channel, attempt, slackError: e.slackError, retryInMs: retryIn },
          'slack send failed; retrying',
        );
        // Later sends to this channel wait behind the retry, which keeps their order.
        await this.#gate.defer(key, this.#now() + retryIn);
      }
    }
  }

  /** How long to wait before the next attempt, or undefined to give up. */
  #retryDelay(e: SlackCallError, attempt: number): number | undefined {
    if (e.kind === 'permanent' || attempt >= this.#maxAttempts) return undefined;
    if (e.kind === 'rate_limited') {
      const ms = e.retryAfterMs ?? 1_000;
      return ms <= this.#maxRetryAfterMs ? ms : undefined;
    }
    return Math.min(2_000, 250 * 2 ** (attempt - 1));
  }
}
