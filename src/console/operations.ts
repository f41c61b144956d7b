/**
 * @module The console's operations view (SPEC §11): queue depth and lag per channel, the bot's health
 * and circuit breaker, and the outbound webhook endpoints with their failed deliveries.
 *
 * Depth and lag per channel are read from the conversations that are not closed, most recently
 * created first, at most {@link SCAN_CONVERSATIONS} per status: for each, the user messages among its
 * last {@link SCAN_MESSAGES} not yet processed. `pending` is the store's exact count over everything.
 */
import { CHANNELS, type ChannelName, type Conversation } from '../core/model.js';
import type { GatewayDeps } from '../deps.js';
import { HttpBot } from '../pipeline/bot/http.js';
import { type DeliveryView, deliveryView, type EndpointView, endpointView } from '../webhooks/service.js';

export const SCAN_CONVERSATIONS = 100;
export const SCAN_MESSAGES = 20;
const FAILED_PER_ENDPOINT = 20;

export interface ChannelQueue {
  channel: ChannelName;
  /** Messages waiting for or in processing. */
  depth: number;
  /** Age of the oldest of them in milliseconds (0 when none wait). */
  lagMs: number;
  /** Conversations of the channel in handoff (bot muted). */
  handoff: number;
}

export interface Operations {
  at: string;
  queue: { pending: number; channels: ChannelQueue[]; scanned: number };
  bot: {
    kind: 'demo' | 'http';
    /** `closed` (calls pass), `open` (failing fast) or `half-open` (one trial); a demo bot has none. */
    breaker: 'closed' | 'open' | 'half-open' | 'none';
    healthy: boolean;
    /** Messages handled since the process started, by outcome. */
    outcomes: Record<string, number>;
  };
  webhooks: Array<{ endpoint: EndpointView; failed: DeliveryView[]; retrying: number }>;
}

async function channelQueues(deps: GatewayDeps, now: number): Promise<Operations['queue']> {
  const { store } = deps;
  const lists = await Promise.all(
    (['open', 'handoff'] as const).map((status) =>
      store.listConversations({ take: SCAN_CONVERSATIONS, order: 'desc', status }),
    ),
  );
  const conversations: Conversation[] = lists.flatMap((page) => page.items);
  const byChannel = new Map<ChannelName, ChannelQueue>(
    CHANNELS.map((channel) => [channel, { channel, depth: 0, lagMs: 0, handoff: 0 }]),
  );
  await Promise.all(
    conversations.map(async (conversation) => {
      const row = byChannel.get(conversation.channel)!;
      if (conversation.status === 'handoff') row.handoff += 1;
      const page = await store.listMessages(conversation.id, {
        take: SCAN_MESSAGES,
        order: 'desc',
        type: 'user',
      });
      for (const message of page.items) {
        const state = message.processing?.state;
        if (state !== 'queued' && state !== 'processing') continue;
        row.depth += 1;
        row.lagMs = Math.max(row.lagMs, now - Date.parse(message.createdAt));
      }
    }),
  );
  const active = new Set(deps.adapters.map((a) => a.name));
  return {
    pending: await store.pendingCount(),
    channels: [...byChannel.values()].filter(
      (row) => active.has(row.channel) || row.channel === 'api' || row.depth > 0 || row.handoff > 0,
    ),
    scanned: conversations.length,
  };
}

async function botHealth(deps: GatewayDeps): Promise<Operations['bot']> {
  const bot = deps.bot;
  // The breaker's own state where the bot is an HttpBot; otherwise what the Bot interface tells.
  const breaker =
    bot instanceof HttpBot
      ? bot.breaker.state
      : bot?.circuitOpen?.()
        ? 'open'
        : bot?.kind === 'http'
          ? 'closed'
          : 'none';
  const outcomes: Record<string, number> = {};
  for (const value of (await deps.metrics.processed.get()).values) {
    const outcome = String(value.labels.outcome ?? 'unknown');
    outcomes[outcome] = (outcomes[outcome] ?? 0) + value.value;
  }
  return { kind: bot?.kind ?? 'demo', breaker, healthy: breaker !== 'open', outcomes };
}

async function webhookHealth(deps: GatewayDeps): Promise<Operations['webhooks']> {
  const page = await deps.webhooks.list({ take: 50, order: 'asc' });
  return Promise.all(
    page.items.map(async (endpoint) => {
      const [dead, retrying] = await Promise.all([
        deps.webhooks.deliveries(endpoint.id, { take: FAILED_PER_ENDPOINT, order: 'desc', status: 'dead' }),
        deps.webhooks.deliveries(endpoint.id, { take: 50, order: 'desc', status: 'retrying' }),
      ]);
      return {
        endpoint: endpointView(endpoint),
        // Dead deliveries already replayed have a copy of their own in the list; they are done.
        failed: dead.items.map(deliveryView).filter((d) => d.replayedBy === null),
        retrying: retrying.items.length,
      };
    }),
  );
}

/** One snapshot of the operations view. */
export async function operations(deps: GatewayDeps, now = Date.now()): Promise<Operations> {
  const [queue, bot, webhooks] = await Promise.all([
    channelQueues(deps, now),
    botHealth(deps),
    webhookHealth(deps),
  ]);
  return { at: new Date(now).toISOString(), queue, bot, webhooks };
}
