/**
 * @module What each channel can show or tell (the channel-depth table): typing, read receipts, quick
 * reply buttons, edits, attachments and an agent's display name, each with the reason for its value.
 * The engine and the adapters read their decisions from here (typing only where the channel has it,
 * quick replies written out where there are no buttons, an agent's name where it can be shown), and
 * README's "Channel capabilities" table is {@link capabilityTable}'s output (a test keeps them equal).
 */
import type { ChannelName, Message, QuickReply } from '../core/model.js';

/** One cell: the value and why it is so (a provider fact or what the gateway does). */
export interface Cell<V> {
  readonly value: V;
  readonly reason: string;
}

/**
 * How quick replies reach the customer: `buttons` (tappable, the tap comes back as the customer's
 * message), `text` (written out as a bullet list under the text, see {@link writeOutQuickReplies}:
 * the one way every channel without buttons degrades) or `data` (the API channel: the app renders them).
 */
export type QuickReplyRendering = 'buttons' | 'text' | 'data';

export interface ChannelCapabilities {
  /**
   * Whether the customer can be shown that an answer is being worked on (src/typing/). `renewMs`: how
   * often it is shown again while the bot still works, for indicators the channel drops by itself.
   */
  readonly typing: Cell<boolean> & { readonly renewMs?: number };
  /** Whether the gateway learns that the customer read a reply (delivery status `read`). */
  readonly readReceipts: Cell<boolean>;
  readonly quickReplies: Cell<QuickReplyRendering>;
  /** Whether a customer's edit of a message they sent updates the stored copy. */
  readonly edits: Cell<boolean>;
  /**
   * `both`: files travel both ways as files; `links out`: the customer's files are stored, ours go out
   * as links in the text.
   */
  readonly attachments: Cell<'both' | 'links out'>;
  /** Whether an agent's message is shown under the agent's name (SPEC §8). */
  readonly agentName: Cell<boolean>;
}

/** WhatsApp drops an indicator after 25 s (CHANNELS.md "Typing indicators on WhatsApp"). */
const WHATSAPP_RENEW_MS = 20_000;

const cell = <V>(value: V, reason: string): Cell<V> => ({ value, reason });

export const CAPABILITIES: Readonly<Record<ChannelName, ChannelCapabilities>> = {
  sms: {
    typing: cell(false, 'SMS has no typing indicator'),
    readReceipts: cell(false, 'carriers report delivery at most, never reading'),
    quickReplies: cell('text', 'plain SMS has no buttons'),
    edits: cell(false, 'an SMS cannot be edited'),
    attachments: cell('both', 'MMS media in, MediaUrl out (up to 10 per message)'),
    agentName: cell(false, 'the message comes from our number, which has no per-message name'),
  },
  whatsapp: {
    typing: {
      ...cell(true, "Twilio's typing indicator for the customer's message (marks it read; public beta)"),
      renewMs: WHATSAPP_RENEW_MS,
    },
    readReceipts: cell(true, 'status callbacks report read'),
    quickReplies: cell(
      'text',
      'free-form WhatsApp through Twilio has no buttons (only Content API templates do)',
    ),
    edits: cell(false, "Twilio's webhook carries no edits"),
    attachments: cell('both', 'media in, one MediaUrl per message out'),
    agentName: cell(false, "every message shows the business profile's name"),
  },
  whatsapp_cloud: {
    typing: {
      ...cell(true, "the Cloud API's typing indicator (marks the message read; WHATSAPP_TYPING_INDICATOR)"),
      renewMs: WHATSAPP_RENEW_MS,
    },
    readReceipts: cell(true, 'status webhooks report read'),
    quickReplies: cell('buttons', 'up to 3 reply buttons or a list of up to 10 rows; more are written out'),
    edits: cell(false, 'edit notifications are not mapped'),
    attachments: cell('both', 'media downloaded in, media by link out'),
    agentName: cell(false, "every message shows the business profile's name"),
  },
  slack: {
    typing: cell(true, 'assistant thread status, only for an app set up as an assistant (SLACK_ASSISTANT)'),
    readReceipts: cell(false, 'Slack tells apps nothing about reading'),
    quickReplies: cell('buttons', 'Block Kit buttons; a click comes back as the customer message'),
    edits: cell(true, 'message_changed updates the stored copy'),
    attachments: cell('links out', 'shared files in (url_private), links in the text out'),
    agentName: cell(true, 'chat.postMessage username (chat:write.customize scope)'),
  },
  email: {
    typing: cell(false, 'mail has no typing indicator'),
    readReceipts: cell(false, 'read receipts are not requested (senders ignore or forge them)'),
    quickReplies: cell('text', 'mail has no buttons'),
    edits: cell(false, 'sent mail cannot change'),
    attachments: cell('links out', 'attachments stored in, links in the text out'),
    agentName: cell(true, 'the From display name, "Ana via Support" (the agent via EMAIL_FROM\'s name)'),
  },
  webchat: {
    typing: cell(true, 'a typing frame; the widget drops it after WEBCHAT_TYPING_TIMEOUT_S'),
    readReceipts: cell(true, "the widget's read frame"),
    quickReplies: cell('buttons', 'the widget shows buttons; a tap comes back as the customer message'),
    edits: cell(false, 'the widget sends no edits'),
    attachments: cell(
      'both',
      'visitors upload files (type read from the bytes, WEBCHAT_UPLOAD_*); images show inline, files as links',
    ),
    agentName: cell(true, "the message and typing frames carry the agent's name"),
  },
  api: {
    typing: cell(false, 'no live connection: the app reads replies through the API'),
    readReceipts: cell(false, 'the app does not report reading'),
    quickReplies: cell('data', 'stored on the reply for the app to render'),
    edits: cell(true, 'PATCH /v1/conversations/{id}/messages/{mid}'),
    attachments: cell('both', 'attachment URLs on the message, both ways'),
    agentName: cell(true, "the message's name field"),
  },
};

/** The capabilities of `channel`. */
export function capabilitiesOf(channel: ChannelName): ChannelCapabilities {
  return CAPABILITIES[channel];
}

/** Whether the channel can show that an answer is being worked on. */
export function hasTyping(channel: ChannelName): boolean {
  return CAPABILITIES[channel].typing.value;
}

/**
 * The one way quick replies degrade on a channel without buttons: a bullet list under the text.
 * @example writeOutQuickReplies('Pick one', [{ title: 'Yes' }, { title: 'No' }]) // 'Pick one\n\n• Yes\n• No'
 */
export function writeOutQuickReplies(text: string, quickReplies: readonly QuickReply[]): string {
  if (quickReplies.length === 0) return text;
  return `${text.trimEnd()}\n\n${quickReplies.map((q) => `• ${q.title}`).join('\n')}`.trim();
}

/**
 * A stored reply as `channel` can render it: on a channel whose quick replies are `text`, the quick
 * replies written into the text (and taken off the message), so no adapter has to know. The stored
 * copy keeps them (the API and webhooks still show them).
 */
export function forChannel<M extends Pick<Message, 'text' | 'quickReplies'>>(
  channel: ChannelName,
  message: M,
): M {
  if (CAPABILITIES[channel].quickReplies.value !== 'text' || !message.quickReplies?.length) return message;
  return {
    ...message,
    text: writeOutQuickReplies(message.text ?? '', message.quickReplies),
    quickReplies: [],
  };
}

const COLUMNS: ReadonlyArray<[keyof ChannelCapabilities, string]> = [
  ['typing', 'typing'],
  ['readReceipts', 'read receipts'],
  ['quickReplies', 'quick replies'],
  ['edits', 'edits'],
  ['attachments', 'attachments'],
  ['agentName', 'agent name'],
];

function show(value: unknown): string {
  if (value === true) return 'yes';
  if (value === false) return 'no';
  return String(value);
}

/** README.md's generated block lies between these two lines. */
export const CAPABILITY_MARKERS = [
  '<!-- capabilities:start (generated: npm run docs:capabilities) -->',
  '<!-- capabilities:end -->',
] as const;

/** The table as Markdown, one row per channel, each cell `value: reason` (README's copy). */
export function capabilityTable(): string {
  const rows = [
    `| channel | ${COLUMNS.map(([, title]) => title).join(' | ')} |`,
    `| --- | ${COLUMNS.map(() => '---').join(' | ')} |`,
  ];
  for (const [channel, caps] of Object.entries(CAPABILITIES)) {
    const cells = COLUMNS.map(([key]) => {
      const c = caps[key];
      return `${show(c.value)}: ${c.reason}`.replaceAll('|', '\\|');
    });
    rows.push(`| \`${channel}\` | ${cells.join(' | ')} |`);
  }
  return rows.join('\n');
}
