/**
 * @module The Slack side of typing: an assistant thread's status (`assistant.threads.setStatus` with
 * `channel_id`, `thread_ts` and `status`, https://docs.slack.dev/reference/methods/assistant.threads.setStatus),
 * shown under the thread as "<app> is typing…". Only an app set up as an assistant (the "Agents &
 * AI Apps" feature; the method needs `chat:write`) may set it, and Slack refuses it in other conversations,
 * so it is used only with `SLACK_ASSISTANT=true`: the operator knows how the app is set up, where
 * guessing from events (`assistant_thread_started`) would miss threads started before the gateway ran.
 *
 * The thread is the conversation's (a channel thread) or, in a direct message, the thread of the
 * message being answered (an assistant thread). Slack removes a status after two minutes without a
 * message, and the reply in the thread clears it; the gateway clears it with `status: ""` when it ends
 * (a reply outside the thread, a failure), since replies to direct messages are not posted in threads.
 * When to show it is the typing room's (src/typing/).
 *
 * Best effort: one attempt with a short timeout, failures logged at debug and never retried.
 */
import { WebClient } from '@slack/web-api';
import type { Logger } from 'pino';
import type { ChannelSignal, Conversation } from '../../src/core/index.js';
import type { SlackConfig } from './config.js';
import { parseChannelRef } from './inbound.js';

/** What the customer sees while the bot works. */
export const TYPING_STATUS = 'is typing…';

/** The reply waits for a status request under way: short. */
const STATUS_TIMEOUT_MS = 3_000;

export interface StatusApi {
  setStatus(args: { channel_id: string; thread_ts: string; status: string }): Promise<void>;
}

/** `assistant.threads.setStatus` through the official WebClient at `SLACK_API_URL`, no retries. */
export function createStatusApi(config: SlackConfig): StatusApi {
  const client = new WebClient(config.botToken, {
    slackApiUrl: config.apiUrl,
    retryConfig: { retries: 0 },
    rejectRateLimitedCalls: true,
    timeout: STATUS_TIMEOUT_MS,
    allowAbsoluteUrls: false,
  });
  return {
    async setStatus(args) {
      await client.assistant.threads.setStatus(args);
    },
  };
}

/** The thread a status goes to: the conversation's, else the answered message's, else none. */
export function statusThread(
  conversation: Pick<Conversation, 'channelRef'>,
  signal: ChannelSignal,
): { channel_id: string; thread_ts: string } | undefined {
  const ref = parseChannelRef(conversation.channelRef);
  if (!ref) return undefined;
  const slack = signal.about?.meta?.slack as { threadTs?: unknown; ts?: unknown } | undefined;
  const fromMessage = typeof slack?.threadTs === 'string' ? slack.threadTs : slack?.ts;
  const threadTs = ref.threadTs ?? (typeof fromMessage === 'string' ? fromMessage : undefined);
  return threadTs ? { channel_id: ref.channel, thread_ts: threadTs } : undefined;
}

/** Sets (`on`) or clears (`off`) the assistant status; resolves when done, never rejects. */
export async function setTypingStatus(
  api: StatusApi,
  logger: Logger,
  conversation: Pick<Conversation, 'id' | 'channelRef'>,
  signal: ChannelSignal,
): Promise<void> {
  const thread = statusThread(conversation, signal);
  if (!thread) return;
  try {
    await api.setStatus({ ...thread, status: signal.on ? TYPING_STATUS : '' });
  } catch (err) {
    logger.debug(
      { conversationId: conversation.id, reason: (err as Error).message },
      'Slack assistant status not set',
    );
  }
}
