/**
 * @module The participant routes of the `/v1` API (SPEC §8): list, add and remove participants, and an
 * agent's typing. Agent messages go through `POST /v1/conversations/:id/send` with `from` (see
 * {@link sendAsAgent}).
 */
import type { Router } from 'express';
import { z } from 'zod';
import { hasTyping } from '../channels/capabilities.js';
import { newId } from '../core/ids.js';
import { PARTICIPANT_ROLES } from '../core/model.js';
import type { GatewayDeps } from '../deps.js';
import { conversationOr404, notFound } from '../http/api/lookup.js';
import { parseInput } from '../http/api/schemas.js';
import { agentOf, type ParticipantInput } from './service.js';

/** What the API says about a person is the caller's word only (as for `POST /v1/conversations`). */
const API_IDENTITY = { verified: false, source: 'api' } as const;

export const addSchema = z.strictObject({
  id: z.string().min(1).max(200).optional(),
  role: z.enum(PARTICIPANT_ROLES),
  name: z.string().min(1).max(200),
  address: z.string().min(1).max(320).optional(),
});

export const typingSchema = z.strictObject({
  from: z.strictObject({ id: z.string().min(1).max(200) }),
  /** False clears the indicator before its timeout. */
  on: z.boolean().optional(),
});

/** Mounts `/conversations/:id/participants` and `/conversations/:id/typing`. */
export function participantRoutes(deps: GatewayDeps, router: Router): Router {
  const { store, participants, contacts } = deps;

  router.get('/conversations/:id/participants', async (req, res) => {
    const conversation = await conversationOr404(store, req.params.id);
    res.json({ items: conversation.participants, cursor: null });
  });

  router.post('/conversations/:id/participants', async (req, res) => {
    const body = parseInput(addSchema, req.body ?? {});
    const conversation = await conversationOr404(store, req.params.id);
    let input: ParticipantInput = body;
    if (body.role === 'user') {
      // A user participant gets a contact like any other (SPEC §9), on the caller's word alone
      // (unverified, so it never links). Without an address the contact is keyed by the id.
      const id = body.id ?? (body.address === undefined ? newId('part') : undefined);
      const person = await contacts.contactOf(
        conversation.channel,
        { ...body, id: id ?? newId('part') },
        API_IDENTITY,
      );
      input = { ...body, ...(id !== undefined ? { id } : {}), contactId: person.contactId };
    }
    const result = await participants.add(conversation.id, input);
    if (!result) throw notFound('Conversation', conversation.id);
    if (result.added && result.participant.role === 'user') {
      const current = await store.getConversation(conversation.id);
      if (current) await contacts.attachContact(current, current.channel, result.participant, API_IDENTITY);
    }
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
    // Relayed where the channel shows typing (src/channels/); accepted and ignored everywhere else.
    if (hasTyping(conversation.channel))
      void deps.engine.adapterFor(conversation.channel)?.signal?.(conversation, {
        type: 'typing',
        on: body.on ?? true,
        from: { id: agent.id, ...(agent.name !== undefined ? { name: agent.name } : {}) },
      });
    res.status(204).end();
  });

  return router;
}
