/**
 * @module Frames the gateway sends to browsers (SPEC §7) and the outbound half of the channel: a bot reply
 * is published on the store's bus so whichever gateway process holds the visitor's sockets pushes it
 * (Redis pub/sub with the Redis backend, an in-process emitter with the embedded one).
 */
import type {
  Attachment,
  ChannelSignal,
  Conversation,
  DeliveryStatus,
  Message,
  QuickReply,
  SendResult,
} from '../../src/core/index.js';
import type { WebChatFiles } from './uploads.js';

/** A message as the browser sees it: no meta, entities or processing state. */
export interface WireMessage {
  id: string;
  seq: number;
  type: Message['type'];
  direction: Message['direction'];
  text: string;
  name?: string;
  clientMessageId?: string;
  replyTo?: string;
  attachments?: Attachment[];
  quickReplies?: QuickReply[];
  /** Delivery status of outbound messages. */
  status?: DeliveryStatus;
  /** Who wrote it, for the bot's and agents' messages (SPEC §8): shown by name, with an avatar. */
  from?: WireSender;
  createdAt: string;
}

/** Who the widget shows by name: an agent writing or typing, or the bot (its participant, if any). */
export interface WireSender {
  id: string;
  role: 'agent' | 'bot';
  name?: string;
}

/** What the `ready` frame tells every browser beyond the session: public, never other bot settings. */
export interface ReadyExtras {
  /** The bot configuration's `greeting` (SPEC §10), when one is set. */
  greeting?: string;
  /** Visitor uploads: the largest size and the types accepted; absent when uploads are off. */
  upload?: { maxBytes: number; types: string[] };
}

export type ServerFrame =
  | ({ type: 'ready'; conversationId: string; visitorId: string; expiresAt: string } & ReadyExtras)
  | { type: 'ack'; clientMessageId: string; id: string; seq: number; duplicate?: true }
  | { type: 'message'; message: WireMessage }
  | { type: 'typing'; on: boolean; from?: WireSender }
  | { type: 'receipt'; id: string; seq: number; status: DeliveryStatus }
  | { type: 'error'; code: string; message: string; clientMessageId?: string; retryAfter?: number };

/**
 * Whether a stored message is shown to the visitor: everything but internal notes (`context` etc.),
 * and, in a conversation that spans channels (contact scope), only what was said on web chat.
 */
export function isVisible(message: Message): boolean {
  return (
    message.direction !== 'internal' &&
    (message.type === 'user' || message.type === 'bot' || message.type === 'agent') &&
    (message.channel === undefined || message.channel === 'webchat')
  );
}

/**
 * The browser's form of a stored message. With the conversation, a bot message names its sender: the
 * message's own `name`, else the conversation's bot participant's.
 */
export function toWireMessage(m: Message, conversation?: Pick<Conversation, 'participants'>): WireMessage {
  return {
    id: m.id,
    seq: m.seq,
    type: m.type,
    direction: m.direction,
    text: m.text,
    ...(m.name !== undefined ? { name: m.name } : {}),
    ...(m.clientMessageId !== undefined ? { clientMessageId: m.clientMessageId } : {}),
    ...(m.replyTo !== undefined ? { replyTo: m.replyTo } : {}),
    ...(m.attachments.length > 0 ? { attachments: m.attachments } : {}),
    ...(m.quickReplies && m.quickReplies.length > 0 ? { quickReplies: m.quickReplies } : {}),
    ...(m.delivery ? { status: m.delivery.status } : {}),
    ...(m.type === 'agent' && m.participantId !== undefined
      ? {
          from: {
            id: m.participantId,
            role: 'agent' as const,
            ...(m.name !== undefined ? { name: m.name } : {}),
          },
        }
      : {}),
    ...(m.type === 'bot' ? { from: botSender(m, conversation) } : {}),
    createdAt: m.createdAt,
  };
}

function botSender(m: Message, conversation?: Pick<Conversation, 'participants'>): WireSender {
  const participant = conversation?.participants.find(
    (p) => p.role === 'bot' && (m.participantId === undefined || p.id === m.participantId),
  );
  const name = m.name ?? participant?.name;
  return { id: m.participantId ?? participant?.id ?? 'bot', role: 'bot', ...(name ? { name } : {}) };
}

/** The typing frame of a signal: the bot's, or (with `from`) an agent's, shown by name. */
export function typingFrame(signal: ChannelSignal): ServerFrame {
  if (!signal.from) return { type: 'typing', on: signal.on };
  const { id, name } = signal.from;
  return {
    type: 'typing',
    on: signal.on,
    from: { id, role: 'agent', ...(name !== undefined ? { name } : {}) },
  };
}

/** The narrow interface outbound needs: fan a frame out to every socket of a conversation, anywhere. */
export interface FramePublisher {
  publish(conversationId: string, frame: ServerFrame): Promise<void>;
}

/**
 * Sends a bot reply by publishing it to the conversation's sockets. `sent` is the honest status here:
 * only the process holding a socket knows it was handed over, and that process moves the message to
 * `delivered` when it writes the frame. A visitor who is offline gets the reply from `resume`, since it
 * is already stored.
 */
export async function send(
  publisher: FramePublisher,
  conversation: Conversation,
  message: Message,
  files?: Pick<WebChatFiles, 'grantOutbound'>,
): Promise<SendResult> {
  // The gateway's own files in a reply (an upload echoed, a mail attachment forwarded) become the
  // visitor's to open through the widget's route; other URLs are the bot's own, shown as they are.
  if (files && message.attachments.length > 0)
    await files.grantOutbound(conversation.id, message.attachments);
  await publisher.publish(conversation.id, {
    type: 'message',
    message: toWireMessage(message, conversation),
  });
  return { status: 'sent' };
}
