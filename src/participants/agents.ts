/**
 * @module Agent messages (SPEC §8): `POST /v1/conversations/:id/send` with `from: { id }` naming an
 * agent participant. The message is stored `type: "agent"`, outbound, with the agent as its
 * `participantId` and name, and goes out through the conversation's channel like any outbound message
 * (the channel shows the name where it can). An agent writing into an `open` conversation, or into a
 * handoff nobody is assigned to, takes it: the handoff is entered (or assigned) before the message is
 * stored, so the bot is muted from then on. Agent messages are never queued for the bot.
 */
import type { Conversation, Message } from '../core/model.js';
import type { GatewayDeps } from '../deps.js';
import { notFound } from '../http/api/lookup.js';
import type { OutboundInput } from '../pipeline/engine.js';
import { agentOf } from './service.js';

export async function sendAsAgent(
  deps: Pick<GatewayDeps, 'engine' | 'handoff'>,
  conversation: Conversation,
  agentId: string,
  input: OutboundInput,
): Promise<Message> {
  const agent = agentOf(conversation, agentId);
  let current = conversation;
  const unassigned = conversation.status === 'handoff' && conversation.handoff?.assignee === undefined;
  if (conversation.status === 'open' || unassigned) {
    const taken = await deps.handoff.assign(conversation.id, agent.id);
    if (!taken) throw notFound('Conversation', conversation.id);
    current = taken;
  }
  const message = await deps.engine.sendOutbound(current, {
    ...input,
    type: 'agent',
    participantId: agent.id,
    name: agent.name ?? input.name,
  });
  // People are answering: the idle release waits again from now (taking it above restarted it too).
  if (current === conversation && conversation.status === 'handoff')
    await deps.handoff.agentActed(conversation.id);
  return message;
}
