/**
 * @module The participant routes of the `/v1` API (SPEC §8): list, add and remove participants, and an
 * agent's typing. Agent messages go through `POST /v1/conversations/:id/send` with `from` (see
 * {@link sendAsAgent}).
 */
import type { Router } from 'express';
import { z } from 'zod';
import { PARTICIPANT_ROLES } from '../core/model.js';
import type { GatewayDeps } from '../deps.js';
import { conversationOr404, notFound } from '../http/api/lookup.js';
import { parseInput } from '../http/api/schemas.js';
import { agentOf } from './service.js';

const addSchema = z.strictObject({
  id: z.string().min(1).max(200).optional(),
  role: z.enum(PARTICIPANT_ROLES),
  name: z.string().min(1).max(200),
  address: z.string().min(1).max(320).optional(),
});

const typingSchema = z.strictObject({
  from: z.strictObject({ id: z.string().min(1).max(200) }),
  /** False clears the indicator before its timeout. */
  on: z.boolean().optional(),
});

/** Mounts `/conversations/:id/participants` and `/conversations/:id/typing`. */
export function participantRoutes(deps: GatewayDeps, router: Router): Router {
  const { store, participants } = deps;

  router.get('/conversations/:id/participants', async (req, res) => {
    const conversation = await conversationOr404(store, req.params.id);
    res.json({ items: conversation.participants, cursor: null });
  });

  router.post('/conversations/:id/participants', async (req, res) => {
    const body = parseInput(addSchema, req.body ?? {});
    const conversation = await conversationOr404(store, req.params.id);
    const result = await participants.add(conversation.id, body);
    if (!result) throw notFound('Conversation', conversation.id);
    res.status(result.added ? 201 : 200).json(result.participant);
  });

  router.delete('/conversations/:id/participants/:pid', async (req, res) => {
    const conversation = await conversationOr404(store, req.params.id);
    const removed = await participants.remove(conversation.id, req.params.pid);
    if (!removed) throw notFound('Conversation', conversation.id);
    res.json({ id: removed.id });
  });

  router.post('/conversations/:id/typing', async (req, res) => {
    const body = parseInput(typingSchema, req.body ?? {});
    const conversation = await conversationOr404(store, req.params.id);
    const agent = agentOf(conversation, body.from.id);
    // Relayed where the channel shows typing (web chat); accepted and ignored everywhere else.
    deps.engine.adapterFor(conversation.channel)?.signal?.(conversation, {
      type: 'typing',
      on: body.on ?? true,
      from: { id: agent.id, ...(agent.name !== undefined ? { name: agent.name } : {}) },
    });
    res.status(204).end();
  });

  return router;
}
