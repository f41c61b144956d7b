/**
 * @module The Chatbot API (SPEC §5): `POST /v1/sessions` starts an API-channel conversation,
 * `POST /v1/messages` runs the pipeline for one user message (optionally waiting for the replies), and
 * `POST /v1/conversations/:id/send` sends through whatever channel a conversation came from.
 */
import { Router } from 'express';
import { z } from 'zod';
import { GatewayError } from '../../core/errors.js';
import { newId } from '../../core/ids.js';
import { LruCache } from '../../core/lru.js';
import { CHANNELS, type ChannelName, type Message } from '../../core/model.js';
import type { GatewayDeps } from '../../deps.js';
import { sendAsAgent } from '../../participants/agents.js';
import { botReplySchema } from '../../pipeline/bot/types.js';
import { templateSchema } from '../../whatsapp/window.js';
import { replyJson } from '../reply.js';
import { conversationOr404, createConversation, notFound } from './lookup.js';
import { messageResponse, parseInput } from './schemas.js';

const meta = z.record(z.string(), z.unknown());

export const sessionBody = z
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

export const messageBody = z
  .object({
    conversationId: z.string().min(1).max(100),
    text: z.string().min(1).max(10_000),
    meta: meta.optional(),
    clientMessageId: z.string().min(1).max(200).optional(),
    /** Seconds to wait for the bot's replies before answering 202. */
    wait: z.number().min(0).max(30).optional(),
  })
  .strict();

export const sendBody = botReplySchema
  .extend({
    text: z.string().min(1).max(10_000),
    name: z.string().max(200).optional(),
    /** An agent participant sending this message (SPEC §8). */
    from: z.strictObject({ id: z.string().min(1).max(200) }).optional(),
    channel: z.enum(CHANNELS).optional().meta({
      description:
        "With `CONVERSATION_SCOPE=contact`: the channel to send on, one the conversation is reached by (default: the channel of the customer's latest message).",
    }),
    template: templateSchema.optional().meta({
      description:
        'WhatsApp only: an approved template, the one kind of message allowed more than 24 hours after the customer last wrote. Twilio: `{ contentSid, variables }` (Content API); Cloud API: `{ name, language, components }`. `text` is what the transcript shows.',
    }),
  })
  .strict();

/** `201` of `POST /v1/sessions`. */
export const sessionResponse = z.object({ sessionId: z.string(), conversationId: z.string() });

/** `202` of `POST /v1/messages`: accepted, the bot's replies not (yet) there within `wait`. */
export const messageQueuedResponse = z.object({
  status: z.literal('queued'),
  duplicate: z.boolean(),
  message: z.object({ id: z.string(), conversationId: z.string(), seq: z.number().int() }),
});

/** `200` of `POST /v1/messages`: processed within `wait`, with the bot's replies. */
export const messageProcessedResponse = z.object({
  duplicate: z.boolean(),
  message: messageResponse,
  replies: z.array(messageResponse),
});

/** Default `wait` for `POST /v1/messages`: long enough for the demo bot and typical HTTP bots. */
const DEFAULT_WAIT_S = 5;
/** Conversations whose routing facts `POST /v1/messages` keeps in memory (a few hundred KB at most). */
const FACTS_CACHE_SIZE = 10_000;

/**
 * What `POST /v1/messages` needs of a conversation besides its id. Both are fixed when it is created:
 * the channel never changes, and the session's user is its first user participant (others the
 * participants API adds come after it). A deleted conversation is caught by the accept
 * itself, which refuses a conversation that does not exist; ids are never reused.
 */
interface ConversationFacts {
  channel: ChannelName;
  /** The session's user: the author of its messages (the first user participant). */
  userId: string | undefined;
  userName: string | undefined;
}

export function chatbotRoutes(deps: GatewayDeps, router: Router = Router()): Router {
  const { store, engine, ingest } = deps;

  const facts = new LruCache<string, ConversationFacts>(FACTS_CACHE_SIZE);

  const factsOr404 = async (id: string): Promise<ConversationFacts> => {
    const cached = facts.get(id);
    if (cached) return cached;
    const conversation = await conversationOr404(store, id);
    const known = {
      channel: conversation.channel,
      userId: conversation.participants.find((p) => p.role === 'user')?.id,
      userName: conversation.participants.find((p) => p.role === 'user')?.name,
    };
    facts.set(id, known);
    return known;
  };

  router.post('/sessions', async (req, res) => {
    const body = parseInput(sessionBody, req.body ?? {});
    if (deps.lifecycle.draining) throw new GatewayError('GW_ERR_SHUTTING_DOWN', undefined, { retryAfter: 1 });
    const conversation = await createConversation(deps, {
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
    res.status(201).json({ sessionId: conversation.sessionId, conversationId: conversation.id });
  });

  router.post('/messages', async (req, res) => {
    const body = parseInput(messageBody, req.body ?? {});
    const conversationId = body.conversationId;
    const { channel, userId, userName } = await factsOr404(conversationId);
    if (channel !== 'api') {
      throw new GatewayError(
        'GW_ERR_CONFLICT',
        `Conversation ${conversationId} belongs to the ${channel} channel; use POST /v1/conversations/${conversationId}/send`,
      );
    }
    const waitMs = (body.wait ?? DEFAULT_WAIT_S) * 1000;
    const result = await ingest
      .acceptInto(
        { id: conversationId },
        'api',
        body.clientMessageId ? `client:${body.clientMessageId}` : `gen:${newId('msg')}`,
        {
          type: 'user',
          direction: 'inbound',
          text: body.text,
          meta: body.meta,
          clientMessageId: body.clientMessageId,
          ...(userName ? { name: userName } : {}),
          ...(userId ? { participantId: userId } : {}),
        },
        { notify: waitMs > 0 },
      )
      .catch((err: unknown) => {
        if (!(err instanceof GatewayError && err.code === 'GW_ERR_NOT_FOUND')) throw err;
        facts.delete(conversationId);
        throw notFound('Conversation', conversationId);
      });
    const { message } = result;
    const processed = waitMs > 0 && (await engine.waitForProcessed(conversationId, message.id, waitMs));
    if (!processed) {
      replyJson(res, 202, {
        status: 'queued',
        duplicate: result.duplicate,
        message: { id: message.id, conversationId, seq: message.seq },
      });
      return;
    }
    const final = (await store.getMessage(conversationId, message.id)) ?? message;
    const replies = await Promise.all(
      (final.processing?.replyIds ?? []).map((id) => store.getMessage(conversationId, id)),
    );
    res.status(200).json({
      duplicate: result.duplicate,
      message: final,
      replies: replies.filter((m): m is Message => m !== null),
    });
  });

  router.post('/conversations/:id/send', async (req, res) => {
    const { from, ...body } = parseInput(sendBody, req.body ?? {});
    const conversation = await conversationOr404(store, req.params.id);
    // Before an agent's send takes the handoff: a message that cannot go out changes nothing.
    await engine.assertSendable(conversation, body);
    if (from) {
      // An agent's message (SPEC §8): typed `agent`, sent as that agent, the handoff taken if open.
      res.status(201).json(await sendAsAgent(deps, conversation, from.id, body));
      return;
    }
    const message = await engine.sendOutbound(conversation, body);
    // People are answering: the handoff's idle release waits again from now.
    if (conversation.status === 'handoff') await deps.handoff.agentActed(conversation.id);
    res.status(201).json(message);
  });

  return router;
}
