/**
 * The engine suite's delivery checks (SPEC §4), shared by every test that runs them on a different
 * process layout (two `ROLE=all` gateways, a `web` and a `worker`): API sessions, paging through a
 * conversation's messages, a bounded request pool, and the assertions that each message reached the
 * bot exactly once, in order per conversation, and got one stored reply after it.
 */
import { expect } from 'vitest';
import type { Message } from '../../src/core/model.js';
import type { BotCall } from '../fakes/bot.js';
import { eventually } from './eventually.js';
import { apiFetch } from './http.js';

/** A new API-channel conversation on the gateway at `base`; its id. */
export async function session(base: string): Promise<string> {
  const res = await apiFetch(base, '/v1/sessions', { method: 'POST', json: {} });
  expect(res.status).toBe(201);
  return ((await res.json()) as { conversationId: string }).conversationId;
}

/** Every message of a conversation, page by page. */
export async function allMessages(base: string, conversationId: string): Promise<Message[]> {
  const out: Message[] = [];
  let cursor: string | null = null;
  do {
    const q: string = cursor ? `&cursor=${encodeURIComponent(cursor)}` : '';
    const res = await apiFetch(base, `/v1/conversations/${conversationId}/messages?take=200${q}`);
    const page = (await res.json()) as { items: Message[]; cursor: string | null };
    out.push(...page.items);
    cursor = page.cursor;
  } while (cursor);
  return out;
}

/** Runs `tasks` with at most `limit` in flight; the results in the tasks' order. */
export async function pool<T>(tasks: Array<() => Promise<T>>, limit: number): Promise<T[]> {
  const results: T[] = new Array(tasks.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < tasks.length) {
        const i = next++;
        results[i] = await tasks[i]!();
      }
    }),
  );
  return results;
}

/**
 * Exactly once and in order: `messages` distinct messages reached the bot once each, and per
 * conversation (`conversations` of them) the bot saw strictly increasing seqs.
 */
export async function expectOnceInOrder(
  calls: readonly BotCall[],
  expected: { messages: number; conversations: number },
): Promise<void> {
  await eventually(() => new Set(calls.map((c) => c.messageId)).size === expected.messages, 90_000, 200);
  // Let any stray duplicate delivery surface before asserting.
  await new Promise((r) => setTimeout(r, 500));
  const perMessage = new Map<string, number>();
  for (const call of calls) perMessage.set(call.messageId, (perMessage.get(call.messageId) ?? 0) + 1);
  expect([...perMessage.values()].filter((n) => n !== 1)).toEqual([]);
  expect(calls).toHaveLength(expected.messages);

  const byConversation = new Map<string, number[]>();
  for (const call of [...calls].sort((x, y) => x.at - y.at)) {
    const list = byConversation.get(call.conversationId) ?? [];
    list.push(call.seq);
    byConversation.set(call.conversationId, list);
  }
  expect(byConversation.size).toBe(expected.conversations);
  const violations = [...byConversation.values()].filter((seqs) =>
    seqs.some((s, i) => i > 0 && s <= seqs[i - 1]!),
  );
  expect(violations).toEqual([]);
}

/** One stored reply per message (the echo bot's `re: <text>`), after its message, nothing lost. */
export async function expectOneReplyEach(
  base: string,
  conversations: readonly string[],
  perConversation: number,
): Promise<void> {
  await eventually(
    async () => {
      for (const conversationId of conversations) {
        const msgs = await allMessages(base, conversationId);
        const users = msgs.filter((m) => m.type === 'user');
        const bots = msgs.filter((m) => m.type === 'bot');
        if (users.length !== perConversation || bots.length !== perConversation) return false;
        for (const u of users) {
          const replies = bots.filter((r) => r.replyTo === u.id);
          if (replies.length !== 1 || replies[0]!.seq <= u.seq || replies[0]!.text !== `re: ${u.text}`)
            return false;
        }
      }
      return true;
    },
    30_000,
    500,
  );
}
