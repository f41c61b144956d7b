/**
 * @module The agent participants a handoff needs (SPEC §8): kept on the conversation's participant
 * list (`id`, role `agent`, `name`, `address?`). Only what assigning requires; the participants API
 * of §8 builds on this.
 */
import { GatewayError } from '../core/errors.js';
import { newId } from '../core/ids.js';
import type { Conversation, Participant } from '../core/model.js';
import type { Store } from '../core/store.js';

export interface AgentInput {
  id?: string;
  name: string;
  address?: string;
}

function unknownAgent(id: string): GatewayError {
  return new GatewayError('GW_ERR_NOT_FOUND', `Agent participant ${id} not found`);
}

/** The agent participant `id` of the conversation, or a 404. */
export function agentOr404(conversation: Conversation, id: string): Participant {
  const found = conversation.participants.find((p) => p.id === id && p.role === 'agent');
  if (!found) throw unknownAgent(id);
  return found;
}

/**
 * The agent participant named by `agent`: the one with its `id` (404 when the conversation has none),
 * else the one with the same address (or, without one, the same name), else a new one added to the
 * conversation, so a retried request adds nobody twice. Null when the conversation is gone.
 */
export async function resolveAgent(
  store: Store,
  conversation: Conversation,
  agent: AgentInput,
): Promise<{ participant: Participant; added: boolean } | null> {
  if (agent.id !== undefined) return { participant: agentOr404(conversation, agent.id), added: false };
  const same = conversation.participants.find(
    (p) =>
      p.role === 'agent' &&
      (agent.address !== undefined
        ? p.address === agent.address
        : p.address === undefined && p.name === agent.name),
  );
  if (same) return { participant: same, added: false };
  const participant: Participant = {
    id: newId('part'),
    role: 'agent',
    name: agent.name,
    ...(agent.address !== undefined ? { address: agent.address } : {}),
  };
  const updated = await store.updateConversation(conversation.id, { participants: [participant] });
  return updated ? { participant, added: true } : null;
}
