/**
 * @module The Slack agents' desk (SPEC §8, docs/handoff.md): with `SLACK_AGENT_CHANNEL` set, every
 * conversation entering handoff, of any channel, gets one card in that channel (customer, channel,
 * reason, the last messages, **Take** and **Hand back to bot**). Later customer messages are mirrored
 * into the card's thread; a person's reply in that thread goes to the customer through the customer's
 * own channel as an agent message of the agent participant `slack:<team>:<user>`. The card follows
 * the handoff's state (chat.update).
 *
 * Cross-process: which process posts a handoff's card is decided in the store (set-if-absent on a key
 * per conversation and handoff), and the card, its thread and the replies already delivered are kv
 * entries every process reads. Work for the desk runs after the event that caused it, in order per
 * conversation, never holding up the step that emitted the event.
 */
import type { Logger } from 'pino';
import type { ChannelContext, Conversation, DomainEvent, KeyValue, Message } from '../../src/core/index.js';
import type { GatewayDeps } from '../../src/deps.js';
import { sendAsAgent } from '../../src/participants/agents.js';
import type { SlackDecision } from './inbound.js';
import { escapeSlackText, type SlackApi, type SlackBlock } from './outbound.js';

/** Button action ids of the card. */
export const TAKE_ACTION = 'desk_take';
export const RELEASE_ACTION = 'desk_release';

/** Cards, threads and delivered replies are remembered this long. */
const DESK_TTL_S = 30 * 86_400;
/** Messages shown on a card. */
const CARD_MESSAGES = 5;
/** A customer message waits this long (tries × ms) for its handoff's card to be posted elsewhere. */
const CARD_WAIT_TRIES = 10;
const CARD_WAIT_MS = 200;
/** A message on the card is cut to this many characters. */
const CARD_TEXT_MAX = 300;

/** The card of a conversation's latest handoff. */
interface Card {
  channel: string;
  ts: string;
  /** `handoff.requestedAt` of the handoff the card is for. */
  requestedAt: string;
}

const claimKey = (conversationId: string, requestedAt: string) =>
  `slack:desk:claim:${conversationId}:${requestedAt}`;
const cardKey = (conversationId: string) => `slack:desk:card:${conversationId}`;
const threadKey = (channel: string, ts: string) => `slack:desk:thread:${channel}:${ts}`;
const ownKey = (channel: string, ts: string) => `slack:desk:own:${channel}:${ts}`;
const replyKey = (dedupeKey: string) => `slack:desk:reply:${dedupeKey}`;

/** The agent participant id of a Slack user at the desk. */
export const deskAgentId = (team: string, user: string) => `slack:${team}:${user}`;

type Services = Pick<GatewayDeps, 'engine' | 'handoff' | 'participants'>;

export interface DeskOptions {
  channel: string;
  api: SlackApi;
  ctx: ChannelContext;
  /** The Slack user's display name (the adapter's cached users.info). */
  profile(team: string, user: string): Promise<{ name?: string }>;
}

export class SlackDesk {
  readonly channel: string;
  readonly #api: SlackApi;
  readonly #ctx: ChannelContext;
  readonly #kv: KeyValue;
  readonly #log: Logger;
  readonly #profile: DeskOptions['profile'];
  #services: Services | undefined;
  #off: (() => void) | undefined;
  /** Per conversation, the desk work under way (kept in order). */
  readonly #chains = new Map<string, Promise<void>>();

  constructor(opts: DeskOptions) {
    this.channel = opts.channel;
    this.#api = opts.api;
    this.#ctx = opts.ctx;
    this.#kv = opts.ctx.store.kv;
    this.#log = opts.ctx.logger.child({ component: 'slack-desk' });
    this.#profile = opts.profile;
  }

  /** Starts following handoffs and customer messages. */
  attach(services: Services): void {
    this.#services = services;
    this.#off ??= this.#ctx.events.on((event) => this.#onEvent(event));
  }

  /** Stops following events and waits for the desk work under way. */
  async stop(): Promise<void> {
    this.#off?.();
    this.#off = undefined;
    while (this.#chains.size > 0) await Promise.all([...this.#chains.values()]);
  }

  // --- events → the card and its thread ----------------------------------------------------------

  #onEvent(event: DomainEvent): void {
    switch (event.type) {
      case 'conversation.handoff_requested':
      case 'conversation.handoff_assigned':
      case 'conversation.handoff_released':
        this.#enqueue(event.conversationId, () => this.#sync(event.conversationId));
        return;
      case 'message.created': {
        const m = event.message;
        if (m && m.direction === 'inbound' && m.type === 'user')
          this.#enqueue(event.conversationId, () => this.#mirror(m));
        return;
      }
      default:
        return;
    }
  }

  #enqueue(conversationId: string, work: () => Promise<void>): void {
    const previous = this.#chains.get(conversationId) ?? Promise.resolve();
    const next = previous
      .then(work)
      .catch((err: unknown) => this.#log.warn({ err, conversationId }, 'slack desk: update failed'))
      .finally(() => {
        if (this.#chains.get(conversationId) === next) this.#chains.delete(conversationId);
      });
    this.#chains.set(conversationId, next);
  }

  async #card(conversationId: string): Promise<Card | null> {
    const raw = await this.#kv.get(cardKey(conversationId));
    if (!raw) return null;
    try {
      return JSON.parse(raw) as Card;
    } catch {
      return null;
    }
  }

  /** Brings the card in line with the conversation: posts it for a new handoff, else updates it. */
  async #sync(conversationId: string): Promise<void> {
    const conversation = await this.#ctx.store.getConversation(conversationId);
    if (!conversation) return;
    const card = await this.#card(conversationId);
    const handoff = conversation.status === 'handoff' ? conversation.handoff : null;
    if (handoff && card?.requestedAt !== handoff.requestedAt) {
      // One card per handoff, whichever process sees it first.
      const claimed = await this.#kv.setIfAbsent(
        claimKey(conversationId, handoff.requestedAt),
        '1',
        DESK_TTL_S,
      );
      if (!claimed) return;
      try {
        await this.#post(conversation, handoff.requestedAt);
      } catch (err) {
        // Not posted: the handoff's next event (or a click) tries again, in whichever process.
        await this.#kv.delete(claimKey(conversationId, handoff.requestedAt));
        throw err;
      }
      return;
    }
    if (card) await this.#update(card, conversation);
  }

  async #post(conversation: Conversation, requestedAt: string): Promise<void> {
    const rendered = await this.#render(conversation);
    const ts = await this.#api.postMessage({ channel: this.channel, ...rendered });
    const card: Card = { channel: this.channel, ts, requestedAt };
    await Promise.all([
      this.#kv.set(cardKey(conversation.id), JSON.stringify(card), DESK_TTL_S),
      this.#kv.set(threadKey(this.channel, ts), conversation.id, DESK_TTL_S),
    ]);
    this.#log.info({ conversationId: conversation.id, ts }, 'slack desk: handoff card posted');
    // The handoff may have moved on (another process) while the card was being posted.
    const now = await this.#ctx.store.getConversation(conversation.id);
    if (now && stateOf(now) !== stateOf(conversation)) await this.#update(card, now);
  }

  async #update(card: Card, conversation: Conversation): Promise<void> {
    if (!this.#api.updateMessage) return;
    const rendered = await this.#render(conversation, card.requestedAt);
    await this.#api.updateMessage({ channel: card.channel, ts: card.ts, ...rendered });
  }

  /** A later customer message, copied into the thread of the card of the handoff it came in. */
  async #mirror(message: Message): Promise<void> {
    const conversation = await this.#ctx.store.getConversation(message.conversationId);
    if (conversation?.status !== 'handoff' || !conversation.handoff) return;
    const { requestedAt } = conversation.handoff;
    // Said before the handoff (the message that asked for it): on the card already.
    if (message.createdAt <= requestedAt) return;
    let card = await this.#card(conversation.id);
    // The card may still be on its way from another process: wait for it a little.
    for (let i = 0; i < CARD_WAIT_TRIES && card?.requestedAt !== requestedAt; i++) {
      await new Promise((resolve) => setTimeout(resolve, CARD_WAIT_MS));
      card = await this.#card(conversation.id);
    }
    if (!card || card.requestedAt !== requestedAt) return;
    const author = conversation.participants.find((p) => p.id === message.participantId);
    const who = author?.name ?? author?.address ?? customerOf(conversation);
    const files = message.attachments.map((a) => a.url);
    const text = [`*${escapeSlackText(who)}:* ${escapeSlackText(message.text)}`, ...files].join('\n');
    const ts = await this.#api.postMessage({ channel: card.channel, thread_ts: card.ts, text });
    await this.#kv.set(ownKey(card.channel, ts), message.id, DESK_TTL_S);
  }

  async #render(
    conversation: Conversation,
    requestedAt = conversation.handoff?.requestedAt,
  ): Promise<{ text: string; blocks: SlackBlock[] }> {
    const customer = customerOf(conversation);
    const h = conversation.handoff;
    const current = conversation.status === 'handoff' && h?.requestedAt === requestedAt;
    const assignee =
      current && h?.assignee ? conversation.participants.find((p) => p.id === h.assignee) : null;
    const state = !current
      ? conversation.status === 'closed'
        ? 'Closed'
        : 'Back with the bot'
      : h?.state === 'assigned'
        ? `Taken by ${assignee?.name ?? h.assignee}`
        : 'Waiting for an agent';
    const recent = await this.#ctx.store.listMessages(conversation.id, {
      take: CARD_MESSAGES * 2,
      order: 'desc',
    });
    const lines = recent.items
      .filter((m) => m.type !== 'activity' && m.type !== 'context')
      .slice(0, CARD_MESSAGES)
      .reverse()
      .map((m) => {
        const who = m.direction === 'inbound' ? customer : m.type === 'agent' ? (m.name ?? 'agent') : 'bot';
        const text = m.text.length > CARD_TEXT_MAX ? `${m.text.slice(0, CARD_TEXT_MAX)}…` : m.text;
        return `> *${escapeSlackText(who)}:* ${escapeSlackText(text.replace(/\n/g, ' '))}`;
      });
    const text = `Handoff: ${customer} on ${conversation.channel}: ${state}`;
    const blocks: SlackBlock[] = [
      {
        type: 'section',
        block_id: 'summary',
        fields: [
          { type: 'mrkdwn', text: `*Customer*\n${escapeSlackText(customer)}` },
          { type: 'mrkdwn', text: `*Channel*\n${conversation.channel}` },
          { type: 'mrkdwn', text: `*Reason*\n${escapeSlackText(h?.reason ?? '-')}` },
          { type: 'mrkdwn', text: `*State*\n${escapeSlackText(state)}` },
        ],
      },
      {
        type: 'section',
        block_id: 'messages',
        text: { type: 'mrkdwn', text: lines.length > 0 ? lines.join('\n') : '_no messages yet_' },
      },
      {
        type: 'context',
        block_id: 'conversation',
        elements: [
          { type: 'mrkdwn', text: `Conversation \`${conversation.id}\` · reply in this thread to answer` },
        ],
      },
    ];
    if (current) {
      blocks.push({
        type: 'actions',
        block_id: 'desk',
        elements: [
          {
            type: 'button',
            action_id: TAKE_ACTION,
            text: { type: 'plain_text', text: 'Take' },
            style: 'primary',
            value: conversation.id,
          },
          {
            type: 'button',
            action_id: RELEASE_ACTION,
            text: { type: 'plain_text', text: 'Hand back to bot' },
            value: conversation.id,
          },
        ],
      });
    }
    return { text, blocks };
  }

  // --- Slack → the conversation ------------------------------------------------------------------

  /**
   * Takes an accepted Slack message or click when it belongs to the desk: a click on a card's button,
   * or a person's reply in a card's thread. False when it is not the desk's (the adapter goes on).
   */
  /**
   * Whether {@link handle} may act on this event as an agent's (a click on a card, or a message in the
   * desk channel): such events are refused when their signature did not verify, even in report mode.
   */
  claims(decision: Extract<SlackDecision, { kind: 'accept' }>): boolean {
    const slack = (decision.inbound.message.meta?.slack ?? {}) as { channel?: string; actionId?: string };
    return (
      slack.actionId === TAKE_ACTION || slack.actionId === RELEASE_ACTION || slack.channel === this.channel
    );
  }

  async handle(decision: Extract<SlackDecision, { kind: 'accept' }>): Promise<boolean> {
    const slack = (decision.inbound.message.meta?.slack ?? {}) as {
      channel?: string;
      ts?: string;
      threadTs?: string;
      actionId?: string;
      messageTs?: string;
    };
    if (slack.actionId === TAKE_ACTION || slack.actionId === RELEASE_ACTION) {
      await this.#click(decision, slack.actionId, slack.channel ?? '', slack.messageTs ?? '');
      return true;
    }
    if (slack.channel !== this.channel || !slack.threadTs || !slack.ts || slack.ts === slack.threadTs)
      return false;
    const conversationId = await this.#kv.get(threadKey(slack.channel, slack.threadTs));
    if (!conversationId) return false;
    // Our own posts (mirrored customer messages) are never an agent's reply.
    if ((await this.#kv.get(ownKey(slack.channel, slack.ts))) !== null) return true;
    await this.#reply(decision, conversationId, slack.ts);
    return true;
  }

  async #agent(conversationId: string, team: string, user: string) {
    const { name } = await this.#profile(team, user);
    const id = deskAgentId(team, user);
    const added = await this.#services!.participants.add(conversationId, {
      id,
      role: 'agent',
      name: name ?? user,
      address: `${team}:${user}`,
    });
    return added ? id : null;
  }

  async #reply(
    decision: Extract<SlackDecision, { kind: 'accept' }>,
    conversationId: string,
    ts: string,
  ): Promise<void> {
    const services = this.#services;
    if (!services) throw new Error('slack desk not attached');
    // Slack's retries carry the same message; the first delivery claims it, a failure frees it again.
    const key = replyKey(decision.inbound.dedupeKey);
    if (!(await this.#kv.setIfAbsent(key, conversationId, DESK_TTL_S))) {
      this.#log.debug({ conversationId, ts }, 'slack desk: agent reply already delivered');
      return;
    }
    try {
      const agentId = await this.#agent(conversationId, decision.team, decision.userId);
      const conversation = agentId ? await this.#ctx.store.getConversation(conversationId) : null;
      if (!agentId || !conversation) {
        this.#log.info({ conversationId, ts }, 'slack desk: reply for a conversation that is gone; dropped');
        return;
      }
      // Files shared in Slack are private to the workspace (url_private): only the text goes on.
      const text = decision.inbound.message.text.trim();
      if (!text) {
        this.#log.info({ conversationId, ts }, 'slack desk: reply without text (files only) not sent on');
        return;
      }
      await sendAsAgent(services, conversation, agentId, {
        text,
        meta: { slackDesk: { channel: this.channel, ts } },
      });
    } catch (err) {
      await this.#kv.delete(key);
      throw err;
    }
  }

  async #click(
    decision: Extract<SlackDecision, { kind: 'accept' }>,
    action: string,
    channel: string,
    messageTs: string,
  ): Promise<void> {
    const services = this.#services;
    if (!services) throw new Error('slack desk not attached');
    const conversationId = await this.#kv.get(threadKey(channel, messageTs));
    const conversation = conversationId ? await this.#ctx.store.getConversation(conversationId) : null;
    if (!conversationId || !conversation) {
      this.#log.warn(
        { channel, messageTs, action, conversationId },
        'slack desk: click on a card whose conversation is gone; nothing changed',
      );
      return;
    }
    if (action === TAKE_ACTION) {
      const agentId = await this.#agent(conversationId, decision.team, decision.userId);
      if (agentId) await services.handoff.assign(conversationId, agentId);
    } else if (conversation.status === 'handoff') {
      await services.handoff.release(conversationId).catch((err: unknown) => {
        this.#log.info({ err, conversationId }, 'slack desk: hand back for a conversation not in handoff');
      });
    }
    // Unchanged state (a second click, an old card): the card is brought up to date all the same.
    this.#enqueue(conversationId, () => this.#sync(conversationId));
  }
}

/** The customer as the card names them: the first user participant's name or address. */
function customerOf(conversation: Conversation): string {
  const user = conversation.participants.find((p) => p.role === 'user');
  return user?.name ?? user?.address ?? conversation.channelRef;
}

function stateOf(c: Conversation): string {
  return `${c.status}:${c.handoff?.state ?? ''}:${c.handoff?.assignee ?? ''}`;
}
