/** @module The bot port: the demo bot and the HTTP bot (SPEC §6) both implement it. */
import { z } from 'zod';
import type { BotContact } from '../../contacts/model.js';
import type { Conversation, Message } from '../../core/model.js';

export interface BotRequest {
  conversation: Conversation;
  /** The customer's contact (SPEC §9): `id`, `name`, `identities`, `meta`. */
  contact?: BotContact;
  message: Message;
  session: { id: string; startedAt: string; state: Record<string, unknown> };
  /** Recent messages of the conversation, oldest first, the current one last. */
  history: Message[];
  /**
   * True on the first request after a handoff to humans ended (SPEC §8): `history` includes what was
   * said meanwhile, none of which the bot was asked about.
   */
  resumed?: boolean;
}

export const botReplySchema = z.object({
  text: z.string().max(10_000),
  attachments: z
    .array(
      z.object({
        url: z.string().url(),
        contentType: z.string().min(1).max(200),
        name: z.string().max(500).optional(),
        size: z.number().int().nonnegative().optional(),
      }),
    )
    .max(10)
    .optional(),
  quickReplies: z
    .array(z.object({ title: z.string().min(1).max(100), payload: z.string().max(1000).optional() }))
    .max(13)
    .optional(),
  meta: z.record(z.string(), z.unknown()).optional(),
});

export const botResponseSchema = z.object({
  replies: z.array(botReplySchema).max(20),
  /** Ask for a human: the conversation moves to `handoff` and the bot is not called until released. */
  handoff: z.boolean().optional(),
  /** Why the bot asks for a human; recorded as the handoff's `reason`. */
  handoffReason: z.string().min(1).max(500).optional(),
  /** Replaces the session-scoped state. */
  sessionState: z.record(z.string(), z.unknown()).optional(),
});

export type BotReply = z.infer<typeof botReplySchema>;
export type BotResponse = z.infer<typeof botResponseSchema>;

/** Why a bot call failed; stored on the message as `processing.error.code`. */
export type BotErrorCode =
  | 'BOT_TIMEOUT'
  | 'BOT_UNREACHABLE'
  | 'BOT_HTTP_ERROR'
  | 'BOT_BAD_RESPONSE'
  | 'BOT_RESPONSE_TOO_LARGE'
  | 'BOT_CIRCUIT_OPEN';

export class BotError extends Error {
  readonly code: BotErrorCode;
  readonly retryable: boolean;
  /** The bot's HTTP status, when it answered one. */
  readonly status: number | undefined;
  constructor(
    code: BotErrorCode,
    message: string,
    retryable: boolean,
    options?: { cause?: unknown; status?: number },
  ) {
    super(message, options);
    this.name = 'BotError';
    this.code = code;
    this.retryable = retryable;
    this.status = options?.status;
  }
}

export interface Bot {
  readonly kind: 'demo' | 'http';
  reply(request: BotRequest, signal: AbortSignal): Promise<BotResponse>;
  /** True while the bot's circuit breaker is open (calls fail fast); absent for a bot without one. */
  circuitOpen?(): boolean;
}
