/**
 * @module Pure mapping from Slack payloads (Events API envelopes and interactivity payloads) to
 * decisions: accept a message, update or delete a stored one, answer a challenge, or ignore.
 *
 * Conversation keys (`channelRef`): a direct message channel is one conversation
 * (`{team}:{channel}`); in a channel the thread is the conversation (`{team}:{channel}:{thread_ts}`),
 * and a top-level mention starts the thread at its own `ts`. The dedupe key is the message identity
 * (`{team}:{channel}:{ts}`), not the `event_id`: Slack retries carry the same `event_id`, but one
 * mention arrives as two events with different `event_id`s (`message` + `app_mention`) and the same
 * `channel` + `ts` (https://docs.slack.dev/apis/events-api/).
 */
import type { Attachment, InboundMessage, Meta } from '../../src/core/index.js';

/** A Slack message's identity: its channel and `ts` within one workspace. */
export interface SlackMessageRef {
  team: string;
  channel: string;
  ts: string;
}

/** What the adapter should do with one Events API request or interactivity payload. */
export type SlackDecision =
  | { kind: 'challenge'; challenge: string }
  | {
      kind: 'accept';
      inbound: InboundMessage;
      /** The Slack message this is, for edits and deletes later; button clicks have none. */
      ref?: SlackMessageRef;
      /** The workspace and the Slack user whose display name the participant should carry. */
      team: string;
      userId: string;
      /**
       * A thread reply that does not mention the bot: accepted only when the thread is already a
       * conversation (the bot was mentioned in it before); otherwise it is people talking to each other.
       */
      followUpOnly: boolean;
    }
  | { kind: 'edit'; ref: SlackMessageRef; text: string }
  | { kind: 'delete'; ref: SlackMessageRef }
  | {
      kind: 'ignore';
      reason: string;
      /** Deliberately refused input (another workspace, unknown types): logged at warn and counted. */
      refused: boolean;
    }
  | { kind: 'invalid'; reason: string };

export interface SlackInboundOptions {
  /** The bot's own user id (auth.test `user_id`), when known. */
  botUserId?: string;
  /** Only this workspace is served, when set. */
  teamId?: string;
}

/** Message subtypes that carry a person's text (CHANNELS.md §2.4); every other subtype is ignored. */
const USER_TEXT_SUBTYPES = new Set(['file_share', 'thread_broadcast']);

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function str(o: Obj | undefined, key: string): string | undefined {
  const v = o?.[key];
  return typeof v === 'string' && v !== '' ? v : undefined;
}

function obj(o: Obj | undefined, key: string): Obj | undefined {
  const v = o?.[key];
  return isObj(v) ? v : undefined;
}

const ignore = (reason: string, refused = false): SlackDecision => ({ kind: 'ignore', reason, refused });
const invalid = (reason: string): SlackDecision => ({ kind: 'invalid', reason });

/**
 * Conversation key of a direct message channel or of a channel thread.
 * @example channelRef('T1', 'D2') // 'T1:D2'; channelRef('T1', 'C3', '1767225500.000100') // 'T1:C3:1767225500.000100'
 */
export function channelRef(team: string, channel: string, threadTs?: string): string {
  return threadTs ? `${team}:${channel}:${threadTs}` : `${team}:${channel}`;
}

/** Parses a `channelRef` back into where a reply goes; undefined for a key this adapter did not make. */
export function parseChannelRef(
  ref: string,
): { team: string; channel: string; threadTs?: string } | undefined {
  const m = /^([A-Z0-9]+):([A-Z0-9]+)(?::(\d+\.\d+))?$/.exec(ref);
  if (!m) return undefined;
  const [, team = '', channel = '', threadTs] = m;
  return threadTs ? { team, channel, threadTs } : { team, channel };
}

/** Slack channel ids of direct messages start with `D` (https://docs.slack.dev/reference/objects/conversation-object). */
function isDirectMessage(channel: string, channelType: string | undefined): boolean {
  return channelType === 'im' || (channelType === undefined && channel.startsWith('D'));
}

function dedupeKeyOf(ref: SlackMessageRef): string {
  return `${ref.team}:${ref.channel}:${ref.ts}`;
}

/**
 * Removes mentions of the bot (`<@U0BOT>` or `<@U0BOT|name>`) so the bot sees what was asked. Without a
 * known bot id, an `app_mention`'s leading mention is the bot's by definition.
 */
function stripBotMention(text: string, botUserId: string | undefined, isMentionEvent: boolean): string {
  if (botUserId) {
    // Nothing to take out (most messages in a DM): the text as the replacements below would leave it.
    if (!text.includes('<@')) return text.replace(/\s+/g, ' ').trim();
    return text.replaceAll(mentionOf(botUserId), '').replace(/\s+/g, ' ').trim();
  }
  return isMentionEvent ? text.replace(/^\s*<@[A-Z0-9]+(?:\|[^>]*)?>\s*/, '').trim() : text.trim();
}

/** The bot's mention pattern, made once per bot id rather than per message. */
let mention: { botUserId: string; pattern: RegExp } | undefined;
function mentionOf(botUserId: string): RegExp {
  if (mention?.botUserId !== botUserId)
    mention = { botUserId, pattern: new RegExp(`<@${botUserId}(?:\\|[^>]*)?>`, 'g') };
  return mention.pattern;
}

/** Shared files as attachments; `url_private` needs the bot token to download (files:read). */
function filesOf(event: Obj): Attachment[] {
  const files = Array.isArray(event.files) ? event.files.filter(isObj) : [];
  const out: Attachment[] = [];
  for (const f of files) {
    const url = str(f, 'url_private');
    if (!url) continue;
    const name = str(f, 'name');
    out.push({
      url,
      contentType: str(f, 'mimetype') ?? 'application/octet-stream',
      ...(name ? { name } : {}),
      ...(typeof f.size === 'number' ? { size: f.size } : {}),
    });
  }
  return out;
}

/** Classifies a parsed Events API request body (`url_verification`, `event_callback`, ...). */
export function classifyEvent(body: unknown, opts: SlackInboundOptions): SlackDecision {
  if (!isObj(body)) return invalid('malformed_payload');
  const type = str(body, 'type');
  if (type === 'url_verification') {
    const challenge = str(body, 'challenge');
    return challenge ? { kind: 'challenge', challenge } : invalid('malformed_payload');
  }
  // Slack's notice that it stopped delivering events for a while (30,000 per workspace per hour).
  if (type === 'app_rate_limited') return ignore('app_rate_limited');
  if (type !== 'event_callback') return ignore('unknown_type', true);
  const team = str(body, 'team_id');
  const event = obj(body, 'event');
  if (!team || !event) return invalid('malformed_payload');
  if (opts.teamId && team !== opts.teamId) return ignore('other_workspace', true);
  // The envelope names the installation the event was delivered for; for a bot install that is the bot.
  const installation = Array.isArray(body.authorizations) ? body.authorizations.find(isObj) : undefined;
  const botUserId =
    opts.botUserId ?? (installation?.is_bot === true ? str(installation, 'user_id') : undefined);
  const eventType = str(event, 'type');
  if (eventType !== 'message' && eventType !== 'app_mention') return ignore('unknown_event', true);
  return classifyMessage(team, event, body, botUserId);
}

function classifyMessage(
  team: string,
  event: Obj,
  envelope: Obj,
  botUserId: string | undefined,
): SlackDecision {
  const channel = str(event, 'channel');
  if (!channel) return invalid('malformed_payload');
  const subtype = str(event, 'subtype');

  if (subtype === 'message_changed') {
    const edited = obj(event, 'message');
    const ts = str(edited, 'ts');
    if (!edited || !ts) return invalid('malformed_payload');
    if (isFromBot(edited, botUserId)) return ignore('bot_post');
    const text = typeof edited.text === 'string' ? edited.text : '';
    return { kind: 'edit', ref: { team, channel, ts }, text: stripBotMention(text, botUserId, false) };
  }
  if (subtype === 'message_deleted') {
    const ts = str(event, 'deleted_ts');
    return ts ? { kind: 'delete', ref: { team, channel, ts } } : invalid('malformed_payload');
  }
  // Loop prevention: the bot's own replies come back as events, with or without `bot_message`
  // (CHANNELS.md §2.4). Posts of other bots are dropped too, so two bots never answer each other.
  if (subtype === 'bot_message' || isFromBot(event, botUserId)) return ignore('bot_post');
  if (subtype && !USER_TEXT_SUBTYPES.has(subtype)) return ignore(`subtype_${subtype}`);
  if (event.hidden === true) return ignore('hidden');
  const user = str(event, 'user');
  const ts = str(event, 'ts');
  if (!user || !ts) return ignore('not_user_text');

  const rawText = typeof event.text === 'string' ? event.text : '';
  const isMention = str(event, 'type') === 'app_mention';
  const mentioned = isMention || (botUserId !== undefined && rawText.includes(`<@${botUserId}`));
  const threadTs = str(event, 'thread_ts');
  const channelType = str(event, 'channel_type');
  const direct = isDirectMessage(channel, channelType);

  let conversationKey: string;
  let thread: string | undefined;
  let followUpOnly = false;
  if (direct) {
    conversationKey = channelRef(team, channel);
  } else if (mentioned) {
    thread = threadTs ?? ts;
    conversationKey = channelRef(team, channel, thread);
  } else if (threadTs && threadTs !== ts) {
    thread = threadTs;
    conversationKey = channelRef(team, channel, thread);
    followUpOnly = true;
  } else {
    return ignore('not_addressed');
  }

  const ref = { team, channel, ts };
  const eventId = str(envelope, 'event_id');
  const clientMsgId = str(event, 'client_msg_id');
  const attachments = filesOf(event);
  const conversationMeta: Meta = {
    slackTeam: team,
    slackChannel: channel,
    slackChannelType: direct ? 'im' : (channelType ?? 'channel'),
    ...(thread ? { slackThreadTs: thread } : {}),
  };
  const inbound: InboundMessage = {
    channel: 'slack',
    channelRef: conversationKey,
    dedupeKey: dedupeKeyOf(ref),
    from: { id: user, role: 'user', address: `${team}:${user}` },
    message: {
      text: stripBotMention(rawText, botUserId, isMention),
      externalId: ts,
      ...(attachments.length > 0 ? { attachments } : {}),
      meta: {
        slack: {
          team,
          channel,
          ts,
          ...(threadTs ? { threadTs } : {}),
          ...(eventId ? { eventId } : {}),
          ...(clientMsgId ? { clientMsgId } : {}),
        },
      },
    },
    conversationMeta,
  };
  return { kind: 'accept', inbound, ref, team, userId: user, followUpOnly };
}

function isFromBot(message: Obj, botUserId: string | undefined): boolean {
  return (
    str(message, 'bot_id') !== undefined || (botUserId !== undefined && str(message, 'user') === botUserId)
  );
}

/**
 * Classifies an interactivity payload (the JSON inside the form field `payload`). A `block_actions`
 * button click becomes a user message in the conversation of the message that carried the button.
 */
export function classifyInteraction(payload: unknown, opts: SlackInboundOptions): SlackDecision {
  if (!isObj(payload)) return invalid('malformed_payload');
  if (str(payload, 'type') !== 'block_actions') return ignore('unsupported_interaction', true);
  const user = obj(payload, 'user');
  const userId = str(user, 'id');
  const team = str(obj(payload, 'team'), 'id') ?? str(user, 'team_id');
  const action = Array.isArray(payload.actions) ? payload.actions.find(isObj) : undefined;
  if (!userId || !team || !action) return invalid('malformed_payload');
  if (opts.teamId && team !== opts.teamId) return ignore('other_workspace', true);
  if (str(action, 'type') !== 'button') return ignore('unsupported_action', true);
  const container = obj(payload, 'container');
  const channelObj = obj(payload, 'channel');
  const channel = str(channelObj, 'id') ?? str(container, 'channel_id');
  const messageTs = str(container, 'message_ts') ?? str(obj(payload, 'message'), 'ts');
  // Buttons in modals or the App Home have no message in a conversation to continue.
  if (!channel || !messageTs) return ignore('not_in_conversation', true);
  const actionId = str(action, 'action_id');
  const actionTs = str(action, 'action_ts');
  if (!actionId || !actionTs) return invalid('malformed_payload');

  const direct = channel.startsWith('D') || str(channelObj, 'name') === 'directmessage';
  const thread = direct
    ? undefined
    : (str(obj(payload, 'message'), 'thread_ts') ?? str(container, 'thread_ts') ?? messageTs);
  const label = str(obj(action, 'text'), 'text');
  const value = str(action, 'value');
  const inbound: InboundMessage = {
    channel: 'slack',
    channelRef: channelRef(team, channel, thread),
    // One click is one action_ts; a retried delivery of the same click carries the same pair.
    dedupeKey: `${team}:action:${actionId}:${actionTs}`,
    from: { id: userId, role: 'user', address: `${team}:${userId}` },
    message: {
      text: value ?? label ?? '',
      meta: {
        quickReply: { ...(label ? { title: label } : {}), ...(value ? { payload: value } : {}) },
        slack: { team, channel, actionId, actionTs, messageTs, ...(thread ? { threadTs: thread } : {}) },
      },
    },
    conversationMeta: {
      slackTeam: team,
      slackChannel: channel,
      slackChannelType: direct ? 'im' : 'channel',
      ...(thread ? { slackThreadTs: thread } : {}),
    },
  };
  return { kind: 'accept', inbound, team, userId, followUpOnly: false };
}
