/**
 * @module What the `/v1` route files share: the 404 for a missing conversation or message, looking a
 * conversation up by id, and creating one together with its `conversation.created` event.
 */
import { GatewayError } from '../../core/errors.js';
import { isId } from '../../core/ids.js';
import type { Conversation } from '../../core/model.js';
import type { NewConversation } from '../../core/store.js';
import type { GatewayDeps } from '../../deps.js';

export function notFound(kind: 'Conversation' | 'Message', id: string): GatewayError {
  return new GatewayError('GW_ERR_NOT_FOUND', `${kind} ${id} not found`);
}

/** The conversation `id`, or a 404. Ids have a fixed shape: any other is a 404 without a storage round trip. */
export async function conversationOr404(store: GatewayDeps['store'], id: string): Promise<Conversation> {
  const conversation = isId(id, 'conv') ? await store.getConversation(id) : null;
  if (!conversation) throw notFound('Conversation', id);
  return conversation;
}

/**
 * Creates a conversation and announces it and its first session, as a channel's first message does.
 * Its user participants get contacts (SPEC §9) like any sender; what the API says about them is
 * nobody's word but the caller's, so their identities are unverified (`source: "api"`) and never link.
 */
export async function createConversation(
  { store, events, contacts }: Pick<GatewayDeps, 'store' | 'events'> & Partial<Pick<GatewayDeps, 'contacts'>>,
  input: NewConversation,
): Promise<Conversation> {
  const identity = { verified: false, source: 'api' };
  const participants = contacts
    ? await Promise.all((input.participants ?? []).map((p) => contacts.contactOf(input.channel, p, identity)))
    : input.participants;
  let conversation = await store.createConversation({ ...input, ...(participants ? { participants } : {}) });
  for (const p of conversation.participants)
    if (contacts && p.role === 'user')
      conversation = await contacts.attachContact(conversation, conversation.channel, p, identity);
  await events.announceConversation(conversation);
  return conversation;
}
