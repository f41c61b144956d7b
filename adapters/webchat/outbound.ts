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
  /** For an agent's message (SPEC §8): the agent, to show by name. */
  from?: WireSender;
  createdAt: string;
}

/** A person the widget shows by name: an agent writing or typing. */
export interface WireSender {
  id: string;
  role: 'agent';
  name?: string;
}

export type ServerFrame =
  | { type: 'ready'; conversationId: string; visitorId: string; expiresAt: string }
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

export function toWireMessage(m: Message): WireMessage {
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
    createdAt: m.createdAt,
  };
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
): Promise<SendResult> {
  await publisher.publish(conversation.id, { type: 'message', message: toWireMessage(message) });
  return { status: 'sent' };
}
