/**
 * @module The Chatbot API (SPEC §5): `POST /v1/sessions` starts an API-channel conversation,
 * `POST /v1/messages` runs the pipeline for one user message (optionally waiting for the replies), and
 * `POST /v1/conversations/:id/send` sends through whatever channel a conversation came from.
 */
import { type Request, Router } from 'express';
import { z } from 'zod';
import { GatewayError } from '../../core/errors.js';
import { newId } from '../../core/ids.js';
import type { Conversation, Message } from '../../core/model.js';
import type { GatewayDeps } from '../../deps.js';
import { botReplySchema } from '../../pipeline/bot/types.js';

const meta = z.record(z.string(), z.unknown());

const sessionBody = z
  .object({
    user: z
      .object({
        id: z.string().min(1).max(200).optional(),
        name: z.string().max(200).optional(),
        address: z.string().max(320).optional(),
      })
      .strict()
      .optional(),
    meta: meta.optional(),
  })
  .strict();

const messageBody = z
  .object({
    conversationId: z.string().min(1).max(100),
    text: z.string().min(1).max(10_000),
    meta: meta.optional(),
    clientMessageId: z.string().min(1).max(200).optional(),
    /** Seconds to wait for the bot's replies before answering 202. */
    wait: z.number().min(0).max(30).optional(),
  })
  .strict();

const sendBody = botReplySchema
  .extend({ text: z.string().min(1).max(10_000), name: z.string().max(200).optional() })
  .strict();

/** Default `wait` for `POST /v1/messages`: long enough for the demo bot and typical HTTP bots. */
const DEFAULT_WAIT_S = 5;

function parse<T>(schema: z.ZodType<T>, req: Request): T {
  const result = schema.safeParse(req.body ?? {});
  if (result.success) return result.data;
  const errors = result.error.issues.map((i) => ({
    field: i.path.join('.') || '(body)',
    message: i.message,
  }));
  throw new GatewayError('GW_ERR_VALIDATION', errors.map((e) => `${e.field}: ${e.message}`).join('; '), {
    errors,
  });
}

export function chatbotRoutes(deps: GatewayDeps): Router {
  const router = Router();
  const { store, engine, ingest, events } = deps;

  const conversationOr404 = async (id: string): Promise<Conversation> => {
    const conversation = await store.getConversation(id);
    if (!conversation) throw new GatewayError('GW_ERR_NOT_FOUND', `Conversation ${id} not found`);
    return conversation;
  };

  router.post('/sessions', async (req, res) => {
    const body = parse(sessionBody, req);
    if (deps.lifecycle.draining) throw new GatewayError('GW_ERR_SHUTTING_DOWN', undefined, { retryAfter: 1 });
    const conversation = await store.createConversation({
      channel: 'api',
      participants: [
        {
          id: body.user?.id ?? newId('part'),
          role: 'user',
          ...(body.user?.name ? { name: body.user.name } : {}),
          ...(body.user?.address ? { address: body.user.address } : {}),
        },
      ],
      meta: body.meta,
    });
    await events.emit({
      type: 'conversation.created',
      conversationId: conversation.id,
      seq: 0,
      conversation,
    });
    await events.emit({
      type: 'session.started',
      conversationId: conversation.id,
      seq: 0,
      sessionId: conversation.sessionId,
    });
    res.status(201).json({ sessionId: conversation.sessionId, conversationId: conversation.id });
  });

  router.post('/messages', async (req, res) => {
    const body = parse(messageBody, req);
    const conversation = await conversationOr404(body.conversationId);
    if (conversation.channel !== 'api') {
      throw new GatewayError(
        'GW_ERR_CONFLICT',
        `Conversation ${conversation.id} belongs to the ${conversation.channel} channel; use POST /v1/conversations/${conversation.id}/send`,
      );
    }
    const user = conversation.participants.find((p) => p.role === 'user');
    const result = await ingest.acceptInto(
      conversation,
      'api',
      body.clientMessageId ? `client:${body.clientMessageId}` : `gen:${newId('msg')}`,
      {
        type: 'user',
        direction: 'inbound',
        text: body.text,
        meta: body.meta,
        clientMessageId: body.clientMessageId,
        ...(user?.name ? { name: user.name } : {}),
      },
    );
    const { message } = result;
    const waitMs = (body.wait ?? DEFAULT_WAIT_S) * 1000;
    const processed = waitMs > 0 && (await engine.waitForProcessed(conversation.id, message.id, waitMs));
    if (!processed) {
      res.status(202).json({
        status: 'queued',
        duplicate: result.duplicate,
        message: { id: message.id, conversationId: conversation.id, seq: message.seq },
      });
      return;
    }
    const final = (await store.getMessage(conversation.id, message.id)) ?? message;
    const replies = await Promise.all(
      (final.processing?.replyIds ?? []).map((id) => store.getMessage(conversation.id, id)),
    );
    res.status(200).json({
      duplicate: result.duplicate,
      message: final,
      replies: replies.filter((m): m is Message => m !== null),
    });
  });

  router.post('/conversations/:id/send', async (req, res) => {
    const body = parse(sendBody, req);
    const conversation = await conversationOr404(req.params.id);
    const message = await engine.sendOutbound(conversation, body);
    res.status(201).json(message);
  });

  return router;
}
