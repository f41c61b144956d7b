/** @module What the accept path asks of contacts (SPEC §9): the sender's contact, the conversation's link. */
import type { SenderIdentity } from '../core/channel.js';
import type { ChannelName, Conversation, Participant } from '../core/model.js';

export interface ContactHooks {
  contactOf(channel: ChannelName, from: Participant, identity?: SenderIdentity): Promise<Participant>;
  attachContact(
    conversation: Conversation,
    channel: ChannelName,
    from: Participant,
    identity?: SenderIdentity,
  ): Promise<Conversation>;
  /** Contact scope: the contact's conversation, and making one theirs (see ContactService). */
  conversationOf(contactId: string): Promise<Conversation | null>;
  claimConversation(contactId: string, conversationId: string): Promise<string | null>;
}
