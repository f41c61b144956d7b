/**
 * @module The conversation API (SPEC §5): conversations and their stored messages as plain records,
 * plus the transcript export. Nothing here triggers the bot or a channel. Every request is validated
 * in full before the first write, so a refused request changes nothing; each successful write emits
 * its domain event before the answer goes out.
 */
import { type Response, Router } from 'express';
import { z } from 'zod';
import { detectEntities } from '../../core/entities.js';
import { isId, newId } from '../../core/ids.js';
import {
  CHANNELS,
  CONVERSATION_STATUSES,
  type Direction,
  MESSAGE_TYPES,
  type Message,
  type MessageType,
} from '../../core/model.js';
import type { MessagePatch, Store } from '../../core/store.js';
import type { GatewayDeps } from '../../deps.js';
import { conversationOr404, createConversation, notFound } from './lookup.js';
import { listQuerySchema, MAX_TAKE, parseListQuery } from './query.js';
import {
  createConversationSchema,
  createMessageSchema,
  exportQuerySchema,
  parseInput,
  patchConversationSchema,
  patchMessageSchema,
} from './schemas.js';

/** Messages recorded through the API are not in flight on any channel: the type alone sets the direction. */
const DIRECTION_OF: Readonly<Record<MessageType, Direction>> = {
  user: 'inbound',
  bot: 'outbound',
  context: 'internal',
  activity: 'internal',
  agent: 'outbound',
};

export const conversationListQuery = listQuerySchema({
  channel: z.enum(CHANNELS).optional(),
  status: z.enum(CONVERSATION_STATUSES).optional(),
});
export const messageListQuery = listQuerySchema({ type: z.enum(MESSAGE_TYPES).optional() });

/** The seq of the newest message, which conversation events carry (0 when there is none). */
async function lastSeq(store: Store, conversationId: string): Promise<number> {
  const page = await store.listMessages(conversationId, { take: 1, order: 'desc' });
  return page.items[0]?.seq ?? 0;
}

/** One transcript line: `[createdAt] type name: text`, continuation lines indented so each entry starts with `[`. */
function transcriptLine(message: Message): string {
  const name = message.name ? ` ${message.name.replace(/\s+/g, ' ')}` : '';
  const text = message.text.replace(/\r\n?/g, '\n').replaceAll('\n', '\n  ');
  return `[${message.createdAt}] ${message.type}${name}: ${text}\n`;
}

/** Resolves once the socket buffer has room again or the client has gone. */
function drained(res: Response): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

/** Mounts the `/conversations` routes of the `/v1` API. */
export function conversationRoutes(deps: GatewayDeps, router: Router = Router()): Router {
  const { store, events } = deps;

  const messageOr404 = async (conversationId: string, id: string): Promise<Message> => {
    const message =
      isId(conversationId, 'conv') && isId(id, 'msg') ? await store.getMessage(conversationId, id) : null;
    if (!message) throw notFound('Message', id);
    return message;
  };

  router.post('/conversations', async (req, res) => {
    const body = parseInput(createConversationSchema, req.body ?? {});
    const conversation = await createConversation(deps, {
      channel: body.channel,
      participants: body.participants?.map((p) => ({ ...p, id: p.id ?? newId('part') })),
      meta: body.meta,
    });
    res.status(201).location(`/v1/conversations/${conversation.id}`).json(conversation);
  });

  router.get('/conversations', async (req, res) => {
    const query = parseListQuery(conversationListQuery, req.query);
    res.json(await store.listConversations(query));
  });

  router.get('/conversations/:id', async (req, res) => {
    res.json(await conversationOr404(store, req.params.id));
  });

  router.patch('/conversations/:id', async (req, res) => {
    const patch = parseInput(patchConversationSchema, req.body ?? {});
    const { id } = req.params;
    if (!isId(id, 'conv')) throw notFound('Conversation', id);
    // A status change goes through the handoff state machine, which keeps `handoff` in step with it.
    let conversation = patch.status === undefined ? null : await deps.handoff.setStatus(id, patch.status);
    if (patch.meta !== undefined || patch.status === undefined)
      conversation = await store.updateConversation(id, { meta: patch.meta });
    if (!conversation) throw notFound('Conversation', id);
    await events.emit({
      type: 'conversation.updated',
      conversationId: id,
      seq: await lastSeq(store, id),
      conversation,
      changes: Object.keys(patch),
    });
    res.json(conversation);
  });

  router.delete('/conversations/:id', async (req, res) => {
    const conversation = await conversationOr404(store, req.params.id);
    const seq = await lastSeq(store, conversation.id);
    if (!(await store.deleteConversation(conversation.id))) throw notFound('Conversation', conversation.id);
    await events.emit({ type: 'conversation.deleted', conversationId: conversation.id, seq, conversation });
    res.json({ id: conversation.id });
  });

  router.get('/conversations/:id/messages', async (req, res) => {
    const query = parseListQuery(messageListQuery, req.query);
    const conversation = await conversationOr404(store, req.params.id);
    res.json(await store.listMessages(conversation.id, query));
  });

  router.post('/conversations/:id/messages', async (req, res) => {
    const body = parseInput(createMessageSchema, req.body ?? {});
    const conversation = await conversationOr404(store, req.params.id);
    const message = await store.appendMessage(conversation.id, {
      ...body,
      direction: DIRECTION_OF[body.type],
      entities: detectEntities(body.text),
    });
    // The conversation can be deleted between the lookup and the append.
    if (!message) throw notFound('Conversation', conversation.id);
    await events.emit({
      type: 'message.created',
      conversationId: conversation.id,
      seq: message.seq,
      message,
    });
    res.status(201).location(`/v1/conversations/${conversation.id}/messages/${message.id}`).json(message);
  });

  router.get('/conversations/:id/messages/:mid', async (req, res) => {
    res.json(await messageOr404(req.params.id, req.params.mid));
  });

  router.patch('/conversations/:id/messages/:mid', async (req, res) => {
    const body = parseInput(patchMessageSchema, req.body ?? {});
    const { id, mid } = req.params;
    const patch: MessagePatch =
      body.text === undefined ? body : { ...body, entities: detectEntities(body.text) };
    const message = isId(id, 'conv') && isId(mid, 'msg') ? await store.updateMessage(id, mid, patch) : null;
    if (!message) throw notFound('Message', mid);
    await events.emit({
      type: 'message.updated',
      conversationId: id,
      seq: message.seq,
      message,
      changes: Object.keys(patch),
    });
    res.json({ id: message.id, entities: message.entities });
  });

  router.delete('/conversations/:id/messages/:mid', async (req, res) => {
    const message = await messageOr404(req.params.id, req.params.mid);
    if (!(await store.deleteMessage(message.conversationId, message.id)))
      throw notFound('Message', message.id);
    await events.emit({
      type: 'message.deleted',
      conversationId: message.conversationId,
      seq: message.seq,
      message,
    });
    res.json({ id: message.id });
  });

  router.get('/conversations/:id/export', async (req, res) => {
    const { format } = parseInput(exportQuerySchema, req.query);
    const conversation = await conversationOr404(store, req.params.id);
    const page = (cursor?: string) =>
      store.listMessages(conversation.id, { take: MAX_TAKE, order: 'asc', cursor });
    const jsonl = format === 'jsonl';
    const render = jsonl ? (m: Message) => `${JSON.stringify(m)}\n` : transcriptLine;
    // The first page is read before any header goes out, so a storage failure is still a proper 503.
    let current = await page();
    res.writeHead(200, {
      'Content-Type': `${jsonl ? 'application/jsonl' : 'text/plain'}; charset=utf-8`,
      'Content-Disposition': `attachment; filename="${conversation.id}.${jsonl ? 'jsonl' : 'txt'}"`,
      'Cache-Control': 'no-store',
    });
    for (;;) {
      if (res.destroyed) return;
      if (!res.write(current.items.map(render).join(''))) await drained(res);
      if (current.cursor === null) break;
      current = await page(current.cursor);
    }
    res.end();
  });

  return router;
}
