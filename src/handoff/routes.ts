/**
 * @module The handoff routes of the `/v1` API (SPEC §8): request, assign and release. Each answers
 * the conversation as it is after the step; repeating a request changes nothing and emits nothing.
 */
import type { Router } from 'express';
import { z } from 'zod';
import type { Conversation } from '../core/model.js';
import type { GatewayDeps } from '../deps.js';
import { conversationOr404, notFound } from '../http/api/lookup.js';
import { parseInput } from '../http/api/schemas.js';
import { AGENT_REQUEST } from './machine.js';
import { agentOr404, resolveAgent } from './participants.js';

export const requestSchema = z.strictObject({
  reason: z.string().min(1).max(500).optional(),
  /** An agent participant's id: assigned at once. */
  assignee: z.string().min(1).max(200).optional(),
});

export const assignSchema = z.strictObject({
  agent: z.strictObject({
    id: z.string().min(1).max(200).optional(),
    name: z.string().min(1).max(200),
    address: z.string().min(1).max(320).optional(),
  }),
});

function found(conversation: Conversation | null, id: string): Conversation {
  // The conversation can be deleted between the lookup and the step.
  if (!conversation) throw notFound('Conversation', id);
  return conversation;
}

/** Mounts `/conversations/:id/handoff` and `/conversations/:id/handoff/assign`. */
export function handoffRoutes(deps: GatewayDeps, router: Router): Router {
  const { store, handoff } = deps;

  router.post('/conversations/:id/handoff', async (req, res) => {
    const body = parseInput(requestSchema, req.body ?? {});
    const conversation = await conversationOr404(store, req.params.id);
    if (body.assignee !== undefined) agentOr404(conversation, body.assignee);
    let updated = await handoff.request(conversation.id, {
      reason: body.reason ?? AGENT_REQUEST,
      requestedBy: 'agent',
      assignee: body.assignee,
    });
    // Already in handoff (the request changed nothing): the assignee named is assigned all the same.
    if (updated && body.assignee !== undefined && updated.handoff?.assignee !== body.assignee)
      updated = await handoff.assign(conversation.id, body.assignee);
    res.json(found(updated, conversation.id));
  });

  router.post('/conversations/:id/handoff/assign', async (req, res) => {
    const body = parseInput(assignSchema, req.body ?? {});
    const conversation = await conversationOr404(store, req.params.id);
    const agent = await resolveAgent(deps.participants, conversation, body.agent);
    if (!agent) throw notFound('Conversation', conversation.id);
    const updated = await handoff.assign(conversation.id, agent.participant.id);
    res.json(found(updated, conversation.id));
  });

  router.delete('/conversations/:id/handoff', async (req, res) => {
    const conversation = await conversationOr404(store, req.params.id);
    res.json(found(await handoff.release(conversation.id), conversation.id));
  });

  return router;
}
