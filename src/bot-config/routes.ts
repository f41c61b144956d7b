/**
 * @module The bot configuration routes of the `/v1` API (SPEC §10, scope `admin`): `GET`, `PUT` and
 * `PATCH /v1/bot` with `ETag` / `If-Match`, `GET /v1/bot/health` (this process's view of the bot) and
 * `POST /v1/bot/test` (one signed request, outside the breaker).
 */
import type { Request, Response, Router } from 'express';
import { z } from 'zod';
import { newId } from '../core/ids.js';
import type { Conversation, Message } from '../core/model.js';
import type { GatewayDeps } from '../deps.js';
import { parseInput } from '../http/api/schemas.js';
import { botResponseSchema } from '../pipeline/bot/types.js';
import type { BotConfigView } from './schema.js';
import { etagOf } from './service.js';

/** `POST /v1/bot/test`: the text the test message carries. */
export const botTestSchema = z.strictObject({
  text: z.string().min(1).max(1000).optional(),
});

/** `GET /v1/bot/health`. */
export const botHealthResponse = z.object({
  bot: z.enum(['http', 'demo']),
  url: z.string().nullable(),
  breaker: z.object({
    state: z.enum(['closed', 'open', 'half-open']),
    consecutiveFailures: z.number().int(),
    threshold: z.number().int(),
    cooldownMs: z.number().int(),
    openedAt: z.string().nullable(),
  }),
  lastError: z.object({ code: z.string(), message: z.string(), at: z.string() }).nullable(),
  lastSuccessAt: z.string().nullable(),
  latency: z
    .object({ samples: z.number().int(), p50Ms: z.number(), p95Ms: z.number(), maxMs: z.number() })
    .nullable(),
  /** The version of the configuration this process runs with. */
  version: z.number().int(),
  /** Always `process`: the figures are this gateway process's own. */
  scope: z.literal('process'),
});

/** `POST /v1/bot/test`: what the bot answered. */
export const botTestResponse = z.object({
  ok: z.boolean(),
  bot: z.enum(['http', 'demo']),
  url: z.string().nullable(),
  /** The bot's HTTP status; absent when it never answered. */
  status: z.number().int().optional(),
  latencyMs: z.number(),
  /** The bot's answer, as parsed, when it was a valid one. */
  response: botResponseSchema.optional(),
  error: z.object({ code: z.string(), message: z.string() }).optional(),
});

/** The test conversation's id: every test request carries it, and `test: true`, so a bot can tell. */
export const TEST_CONVERSATION_ID = 'conv_test';

function answer(res: Response, view: BotConfigView): void {
  res.setHeader('ETag', etagOf(view.version));
  res.json(view);
}

const ifMatch = (req: Request) => req.get('if-match');

/** Mounts `/bot`, `/bot/health` and `/bot/test`. */
export function botConfigRoutes(deps: GatewayDeps, router: Router): Router {
  const { service, bot } = deps.botConfig;

  router.get('/bot', async (_req, res) => {
    answer(res, await service.view());
  });

  router.put('/bot', async (req, res) => {
    answer(res, await service.replace(req.body ?? {}, ifMatch(req)));
  });

  router.patch('/bot', async (req, res) => {
    answer(res, await service.patch(req.body ?? {}, ifMatch(req)));
  });

  router.get('/bot/health', (_req, res) => {
    res.json({ ...bot.health(), version: service.version, scope: 'process' });
  });

  router.post('/bot/test', async (req, res) => {
    const body = parseInput(botTestSchema, req.body ?? {});
    const now = new Date().toISOString();
    const conversation: Conversation = {
      id: TEST_CONVERSATION_ID,
      channel: 'api',
      channelRef: 'test',
      participants: [{ id: 'part_test', role: 'user', name: 'Switchboard test' }],
      status: 'open',
      handoff: null,
      sessionId: 'sess_test',
      sessionStartedAt: now,
      sessionState: {},
      meta: { test: true },
      createdAt: now,
      updatedAt: now,
      lastMessageAt: now,
    };
    const message: Message = {
      id: newId('msg'),
      conversationId: conversation.id,
      seq: 1,
      type: 'user',
      text: body.text ?? 'Switchboard test request',
      meta: { test: true },
      entities: [],
      direction: 'inbound',
      attachments: [],
      participantId: 'part_test',
      createdAt: now,
      updatedAt: now,
    };
    const controller = new AbortController();
    res.once('close', () => controller.abort());
    const result = await bot.probe(
      {
        test: true,
        conversation,
        message,
        session: { id: conversation.sessionId, startedAt: now, state: {} },
        history: [message],
      },
      controller.signal,
    );
    const health = bot.health();
    res.json({ ok: result.error === undefined, bot: health.bot, url: health.url, ...result });
  });

  return router;
}
