/**
 * @module The OpenAPI 3.1 document of the `/v1` API (SPEC §10), served at `GET /v1/openapi.json`.
 * Built from the zod schemas the routes validate with (requests) and answer with (responses) through
 * zod's own JSON Schema 2020-12 output, which OpenAPI 3.1 uses as is. What is written here is only
 * the path table: which schema each route takes and answers, and which error codes it can give.
 * A test walks the router and this table both ways, so a route cannot ship undocumented. The
 * TypeScript SDK's types are generated from this document: after a change, `npm run sdk:generate`.
 */
import { z } from 'zod';
import { botHealthResponse, botTestResponse, botTestSchema } from '../../bot-config/routes.js';
import { botConfigDocument, botConfigPatch, botConfigResponse } from '../../bot-config/schema.js';
import { ERRORS, type ErrorCode, type ErrorSpec } from '../../core/errors.js';
import { assignSchema, requestSchema } from '../../handoff/routes.js';
import { createKeySchema, keyListQuery, keyResponse, keyWithSecretResponse } from '../../keys/routes.js';
import { scopeFor } from '../../keys/scopes.js';
import { addSchema, typingSchema } from '../../participants/routes.js';
import {
  createSchema as createWebhookSchema,
  deliveryListQuery,
  deliveryResponse,
  endpointListQuery,
  endpointResponse,
  endpointWithSecretResponse,
  patchSchema as patchWebhookSchema,
  replayOneQuery,
  replayQuery,
  replayResponse,
} from '../../webhooks/routes.js';
import {
  messageBody,
  messageProcessedResponse,
  messageQueuedResponse,
  sendBody,
  sessionBody,
  sessionResponse,
} from './chatbot.js';
import {
  contactListQuery,
  contactResponse,
  mergeSchema,
  pageQuery,
  patchContactSchema,
  suggestionsResponse,
  unmergeSchema,
} from './contacts.js';
import { conversationListQuery, messageListQuery } from './conversations.js';
import {
  conversationResponse,
  createConversationSchema,
  createMessageSchema,
  deletedResponse,
  exportQuerySchema,
  messageResponse,
  pageResponse,
  participantResponse,
  patchConversationSchema,
  patchedMessageResponse,
  patchMessageSchema,
  problemResponse,
} from './schemas.js';

type Method = 'get' | 'post' | 'patch' | 'put' | 'delete';

interface Answer {
  description: string;
  /** JSON body; absent for an empty answer. */
  schema?: z.ZodType;
  /** Other body media types, described in prose (downloads, exports). */
  media?: readonly string[];
  headers?: readonly string[];
}

/** One documented route. `path` is the Express template (`/v1/conversations/:id`). */
export interface Operation {
  method: Method;
  path: string;
  id: string;
  tag: string;
  summary: string;
  query?: z.ZodObject;
  /** A list: `meta[<key>]=<value>` filters besides the query schema's parameters. */
  metaFilters?: boolean;
  body?: z.ZodType;
  responses: Record<number, Answer>;
  /** Error codes besides those every route of its kind can answer. */
  errors?: readonly ErrorCode[];
  /** False: answered without an API key. */
  auth?: boolean;
  /** True: takes an optional `If-Match` (a stale one answers 412). */
  ifMatch?: boolean;
}

const json = (description: string, schema: z.ZodType, headers?: readonly string[]): Answer => ({
  description,
  schema,
  ...(headers ? { headers } : {}),
});
const conversation = json('The conversation', conversationResponse);
const message = json('The message', messageResponse);
const contact = json('The contact', contactResponse);
const deleted = json('Deleted: the id of what is gone', deletedResponse);
const created = (what: string, schema: z.ZodType) => json(`${what}, created`, schema, ['Location']);

const conversationPage = pageResponse(conversationResponse);
const messagePage = pageResponse(messageResponse);

/** Every `/v1` route, in the order of the routers. */
export const OPERATIONS: readonly Operation[] = [
  {
    method: 'get',
    path: '/v1/openapi.json',
    id: 'getOpenApi',
    tag: 'Meta',
    summary: 'This document',
    responses: { 200: { description: 'The OpenAPI 3.1 document', media: ['application/json'] } },
    auth: false,
  },
  // Chatbot API
  {
    method: 'post',
    path: '/v1/sessions',
    id: 'createSession',
    tag: 'Chatbot',
    summary: 'Start an API-channel conversation',
    body: sessionBody,
    responses: { 201: json('The session and its conversation', sessionResponse) },
    errors: ['GW_ERR_SHUTTING_DOWN'],
  },
  {
    method: 'post',
    path: '/v1/messages',
    id: 'sendUserMessage',
    tag: 'Chatbot',
    summary: "Send a user's message through the bot pipeline, optionally waiting for the replies",
    body: messageBody,
    responses: {
      200: json('Processed within `wait`: the message and the bot replies', messageProcessedResponse),
      202: json('Accepted and queued; the replies were not there within `wait`', messageQueuedResponse),
    },
    errors: ['GW_ERR_NOT_FOUND', 'GW_ERR_CONFLICT', 'GW_ERR_QUEUE_FULL'],
  },
  {
    method: 'post',
    path: '/v1/conversations/:id/send',
    id: 'sendToConversation',
    tag: 'Chatbot',
    summary: "Send a message out through the conversation's channel (as the bot, or as an agent with `from`)",
    body: sendBody,
    responses: { 201: json('The message sent', messageResponse) },
    errors: ['GW_ERR_CHANNEL_UNAVAILABLE', 'GW_ERR_NOT_AN_AGENT', 'GW_ERR_WHATSAPP_WINDOW_CLOSED'],
  },
  // Conversations
  {
    method: 'post',
    path: '/v1/conversations',
    id: 'createConversation',
    tag: 'Conversations',
    summary: 'Create a conversation',
    body: createConversationSchema,
    responses: { 201: created('The conversation', conversationResponse) },
  },
  {
    method: 'get',
    path: '/v1/conversations',
    id: 'listConversations',
    tag: 'Conversations',
    summary: 'List conversations',
    query: conversationListQuery,
    metaFilters: true,
    responses: { 200: json('A page of conversations', conversationPage) },
  },
  {
    method: 'get',
    path: '/v1/conversations/:id',
    id: 'getConversation',
    tag: 'Conversations',
    summary: 'Get a conversation',
    responses: { 200: conversation },
  },
  {
    method: 'patch',
    path: '/v1/conversations/:id',
    id: 'updateConversation',
    tag: 'Conversations',
    summary: 'Change the status or meta of a conversation',
    body: patchConversationSchema,
    responses: { 200: conversation },
    errors: ['GW_ERR_CONFLICT'],
  },
  {
    method: 'delete',
    path: '/v1/conversations/:id',
    id: 'deleteConversation',
    tag: 'Conversations',
    summary: 'Delete a conversation and its messages',
    responses: { 200: deleted },
  },
  {
    method: 'get',
    path: '/v1/conversations/:id/messages',
    id: 'listMessages',
    tag: 'Messages',
    summary: 'List the messages of a conversation',
    query: messageListQuery,
    metaFilters: true,
    responses: { 200: json('A page of messages', messagePage) },
  },
  {
    method: 'post',
    path: '/v1/conversations/:id/messages',
    id: 'createMessage',
    tag: 'Messages',
    summary: 'Record a message (triggers neither the bot nor a channel)',
    body: createMessageSchema,
    responses: { 201: created('The message', messageResponse) },
  },
  {
    method: 'get',
    path: '/v1/conversations/:id/messages/:mid',
    id: 'getMessage',
    tag: 'Messages',
    summary: 'Get a message',
    responses: { 200: message },
  },
  {
    method: 'patch',
    path: '/v1/conversations/:id/messages/:mid',
    id: 'updateMessage',
    tag: 'Messages',
    summary: 'Change a message',
    body: patchMessageSchema,
    responses: { 200: json('The id and the entities found again', patchedMessageResponse) },
  },
  {
    method: 'delete',
    path: '/v1/conversations/:id/messages/:mid',
    id: 'deleteMessage',
    tag: 'Messages',
    summary: 'Delete a message',
    responses: { 200: deleted },
  },
  {
    method: 'get',
    path: '/v1/conversations/:id/export',
    id: 'exportConversation',
    tag: 'Conversations',
    summary: 'Download the transcript: JSON Lines (one message a line) or plain text',
    query: exportQuerySchema,
    responses: {
      200: { description: 'The transcript, as a download', media: ['application/jsonl', 'text/plain'] },
    },
  },
  // Handoff and participants
  {
    method: 'post',
    path: '/v1/conversations/:id/handoff',
    id: 'requestHandoff',
    tag: 'Handoff',
    summary: 'Hand the conversation to humans (idempotent)',
    body: requestSchema,
    responses: { 200: conversation },
    errors: ['GW_ERR_NOT_AN_AGENT'],
  },
  {
    method: 'post',
    path: '/v1/conversations/:id/handoff/assign',
    id: 'assignHandoff',
    tag: 'Handoff',
    summary: 'Assign the handoff to an agent (added as a participant when new)',
    body: assignSchema,
    responses: { 200: conversation },
    errors: ['GW_ERR_NOT_IN_HANDOFF', 'GW_ERR_NOT_AN_AGENT'],
  },
  {
    method: 'delete',
    path: '/v1/conversations/:id/handoff',
    id: 'releaseHandoff',
    tag: 'Handoff',
    summary: 'Give the conversation back to the bot',
    responses: { 200: conversation },
    errors: ['GW_ERR_NOT_IN_HANDOFF'],
  },
  {
    method: 'get',
    path: '/v1/conversations/:id/participants',
    id: 'listParticipants',
    tag: 'Participants',
    summary: 'List the participants of a conversation',
    responses: { 200: json('Every participant (one page)', pageResponse(participantResponse)) },
  },
  {
    method: 'post',
    path: '/v1/conversations/:id/participants',
    id: 'addParticipant',
    tag: 'Participants',
    summary: 'Add a participant (200 with the existing one when already there)',
    body: addSchema,
    responses: {
      200: json('Already a participant', participantResponse),
      201: json('The participant, added', participantResponse),
    },
    errors: ['GW_ERR_CONFLICT'],
  },
  {
    method: 'delete',
    path: '/v1/conversations/:id/participants/:pid',
    id: 'removeParticipant',
    tag: 'Participants',
    summary: 'Remove a participant',
    responses: { 200: deleted },
  },
  {
    method: 'post',
    path: '/v1/conversations/:id/typing',
    id: 'agentTyping',
    tag: 'Participants',
    summary: "Show (or clear) an agent's typing indicator where the channel has one",
    body: typingSchema,
    responses: { 204: { description: 'Relayed, or ignored on a channel without typing' } },
    errors: ['GW_ERR_NOT_AN_AGENT'],
  },
  // Contacts
  {
    method: 'get',
    path: '/v1/contacts',
    id: 'listContacts',
    tag: 'Contacts',
    summary: 'List contacts (by identity `<channel>:<address>` or a name search `q`)',
    query: contactListQuery,
    metaFilters: true,
    responses: { 200: json('A page of contacts', pageResponse(contactResponse)) },
  },
  {
    method: 'get',
    path: '/v1/contacts/suggestions',
    id: 'listMergeSuggestions',
    tag: 'Contacts',
    summary: 'Suggested merges',
    responses: { 200: json('Pairs of contacts that may be one person', suggestionsResponse) },
  },
  {
    method: 'get',
    path: '/v1/contacts/:id',
    id: 'getContact',
    tag: 'Contacts',
    summary: 'Get a contact',
    responses: { 200: contact },
  },
  {
    method: 'patch',
    path: '/v1/contacts/:id',
    id: 'updateContact',
    tag: 'Contacts',
    summary: 'Change the name or meta of a contact',
    body: patchContactSchema,
    responses: { 200: contact },
  },
  {
    method: 'delete',
    path: '/v1/contacts/:id',
    id: 'eraseContact',
    tag: 'Contacts',
    summary: 'Erase a contact',
    responses: { 200: deleted },
  },
  {
    method: 'get',
    path: '/v1/contacts/:id/conversations',
    id: 'listContactConversations',
    tag: 'Contacts',
    summary: "The contact's conversations",
    query: pageQuery,
    responses: { 200: json('A page of conversations', conversationPage) },
  },
  {
    method: 'get',
    path: '/v1/contacts/:id/timeline',
    id: 'getContactTimeline',
    tag: 'Contacts',
    summary: "The contact's messages across every channel",
    query: pageQuery,
    responses: { 200: json('A page of messages', messagePage) },
  },
  {
    method: 'post',
    path: '/v1/contacts/:id/merge',
    id: 'mergeContacts',
    tag: 'Contacts',
    summary: 'Merge the contact `from` into this one',
    body: mergeSchema,
    responses: { 200: json('The contact merged into', contactResponse) },
    errors: ['GW_ERR_MERGE_SELF'],
  },
  {
    method: 'post',
    path: '/v1/contacts/:id/unmerge',
    id: 'unmergeContact',
    tag: 'Contacts',
    summary: 'Split an identity off into a contact of its own',
    body: unmergeSchema,
    responses: {
      200: json('Nothing to split: the contact as it is', contactResponse),
      201: json('The new contact the identity went to', contactResponse),
    },
    errors: ['GW_ERR_IDENTITY_NOT_FOUND', 'GW_ERR_UNMERGE_LAST_IDENTITY'],
  },
  // Outbound webhooks
  {
    method: 'post',
    path: '/v1/webhooks',
    id: 'createWebhook',
    tag: 'Webhooks',
    summary: 'Subscribe an endpoint (the signing secret is shown this once)',
    body: createWebhookSchema,
    responses: { 201: created('The subscription with its secret', endpointWithSecretResponse) },
    errors: ['GW_ERR_WEBHOOK_TARGET_REFUSED'],
  },
  {
    method: 'get',
    path: '/v1/webhooks',
    id: 'listWebhooks',
    tag: 'Webhooks',
    summary: 'List subscriptions',
    query: endpointListQuery,
    responses: { 200: json('A page of subscriptions', pageResponse(endpointResponse)) },
  },
  {
    method: 'get',
    path: '/v1/webhooks/:id',
    id: 'getWebhook',
    tag: 'Webhooks',
    summary: 'Get a subscription',
    responses: { 200: json('The subscription', endpointResponse) },
  },
  {
    method: 'patch',
    path: '/v1/webhooks/:id',
    id: 'updateWebhook',
    tag: 'Webhooks',
    summary: 'Change a subscription or rotate its secret',
    body: patchWebhookSchema,
    responses: {
      200: json(
        'The subscription; with `secret` after `rotateSecret`',
        z.union([endpointWithSecretResponse, endpointResponse]),
      ),
    },
    errors: ['GW_ERR_WEBHOOK_TARGET_REFUSED'],
  },
  {
    method: 'delete',
    path: '/v1/webhooks/:id',
    id: 'deleteWebhook',
    tag: 'Webhooks',
    summary: 'Delete a subscription',
    responses: { 200: deleted },
  },
  {
    method: 'post',
    path: '/v1/webhooks/:id/test',
    id: 'pingWebhook',
    tag: 'Webhooks',
    summary: 'Send a `ping` event',
    responses: { 202: json('The delivery, queued', deliveryResponse) },
    errors: ['GW_ERR_CONFLICT'],
  },
  {
    method: 'get',
    path: '/v1/webhooks/:id/deliveries',
    id: 'listDeliveries',
    tag: 'Webhooks',
    summary: 'The delivery log of a subscription',
    query: deliveryListQuery,
    responses: { 200: json('A page of deliveries', pageResponse(deliveryResponse)) },
  },
  {
    method: 'get',
    path: '/v1/webhooks/:id/deliveries/:did',
    id: 'getDelivery',
    tag: 'Webhooks',
    summary: 'Get a delivery',
    responses: { 200: json('The delivery', deliveryResponse) },
  },
  {
    method: 'post',
    path: '/v1/webhooks/:id/deliveries/:did/replay',
    id: 'replayDelivery',
    tag: 'Webhooks',
    summary: 'Send a delivery again (a dead one, or any with `again=true`)',
    query: replayOneQuery,
    responses: { 202: json('The new delivery, queued', deliveryResponse) },
    errors: ['GW_ERR_CONFLICT'],
  },
  {
    method: 'post',
    path: '/v1/webhooks/:id/replay',
    id: 'replayDeadDeliveries',
    tag: 'Webhooks',
    summary: 'Replay every dead delivery since a time',
    query: replayQuery,
    responses: { 202: json('The deliveries replayed', replayResponse) },
  },
  // API keys (docs/keys.md)
  {
    method: 'post',
    path: '/v1/keys',
    id: 'createKey',
    tag: 'Keys',
    summary: 'Create an API key with scopes (the key is shown this once)',
    body: createKeySchema,
    responses: { 201: created('The key with its secret', keyWithSecretResponse) },
  },
  {
    method: 'get',
    path: '/v1/keys',
    id: 'listKeys',
    tag: 'Keys',
    summary: 'List the managed API keys (never their secrets)',
    query: keyListQuery,
    responses: { 200: json('A page of keys', pageResponse(keyResponse)) },
  },
  {
    method: 'get',
    path: '/v1/keys/:id',
    id: 'getKey',
    tag: 'Keys',
    summary: 'Get an API key (never its secret)',
    responses: { 200: json('The key', keyResponse) },
  },
  {
    method: 'delete',
    path: '/v1/keys/:id',
    id: 'revokeKey',
    tag: 'Keys',
    summary: 'Revoke an API key, in every process at once',
    responses: { 200: deleted },
  },
  // Bot configuration (scope admin)
  {
    method: 'get',
    path: '/v1/bot',
    id: 'getBotConfig',
    tag: 'Bot',
    summary: 'The bot configuration in force (the environment overlaid by the stored one); never the secret',
    responses: { 200: json('The bot configuration', botConfigResponse, ['ETag']) },
  },
  {
    method: 'put',
    path: '/v1/bot',
    id: 'replaceBotConfig',
    tag: 'Bot',
    summary: 'Replace the stored bot configuration (absent fields: the environment’s)',
    body: botConfigDocument,
    responses: { 200: json('The bot configuration now in force', botConfigResponse, ['ETag']) },
    errors: ['GW_ERR_PRECONDITION_FAILED', 'GW_ERR_CONFLICT'],
    ifMatch: true,
  },
  {
    method: 'patch',
    path: '/v1/bot',
    id: 'updateBotConfig',
    tag: 'Bot',
    summary: 'Change the stored bot configuration (JSON merge patch, RFC 7396: `null` removes a value)',
    body: botConfigPatch,
    responses: { 200: json('The bot configuration now in force', botConfigResponse, ['ETag']) },
    errors: ['GW_ERR_PRECONDITION_FAILED', 'GW_ERR_CONFLICT'],
    ifMatch: true,
  },
  {
    method: 'get',
    path: '/v1/bot/health',
    id: 'getBotHealth',
    tag: 'Bot',
    summary: "This process's view of the bot: breaker state, last error, recent latency",
    responses: { 200: json('The bot health in this process', botHealthResponse) },
  },
  {
    method: 'post',
    path: '/v1/bot/test',
    id: 'testBot',
    tag: 'Bot',
    summary: 'Send the bot one signed test request (outside the breaker) and report its answer',
    body: botTestSchema,
    responses: {
      200: json('What the bot answered (`ok: false` with the error when it failed)', botTestResponse),
    },
  },
  // Email, WhatsApp Cloud API and web-chat channels
  {
    method: 'get',
    path: '/v1/attachments/:id',
    id: 'getAttachment',
    tag: 'Email',
    summary:
      'Download an attachment of a received email or WhatsApp Cloud API message, or a file a web-chat visitor sent',
    responses: {
      200: { description: 'The attachment, as a download', media: ['application/octet-stream'] },
    },
  },
];

/** Names of the shared schemas in `components.schemas`; others get the operation's name. */
const NAMED: ReadonlyArray<[z.ZodType, string]> = [
  [conversationResponse, 'Conversation'],
  [messageResponse, 'Message'],
  [participantResponse, 'Participant'],
  [contactResponse, 'Contact'],
  [endpointResponse, 'Webhook'],
  [endpointWithSecretResponse, 'WebhookWithSecret'],
  [deliveryResponse, 'Delivery'],
  [keyResponse, 'ApiKey'],
  [keyWithSecretResponse, 'ApiKeyWithSecret'],
  [deletedResponse, 'Deleted'],
  [conversationPage, 'ConversationPage'],
  [messagePage, 'MessagePage'],
  [problemResponse, 'Problem'],
];

const HEADERS = {
  'X-Request-Id': {
    description:
      "The request's id: the caller's `X-Request-Id` when it is safe (1–64 of `A-Za-z0-9._-`), else a new one.",
    schema: { type: 'string' },
  },
  Location: { description: 'The URL path of the resource created.', schema: { type: 'string' } },
  ETag: {
    description: 'The version of the resource as a strong entity tag; send it back as `If-Match`.',
    schema: { type: 'string' },
  },
  'Retry-After': { description: 'Seconds to wait before trying again.', schema: { type: 'integer' } },
  'RateLimit-Limit': {
    description: 'Requests allowed per window for the key (when rate limits apply).',
    schema: { type: 'integer' },
  },
  'RateLimit-Remaining': { description: 'Requests left in the current window.', schema: { type: 'integer' } },
  'RateLimit-Reset': { description: 'Seconds until the window resets.', schema: { type: 'integer' } },
} as const;

const EVERY_ANSWER_HEADERS = ['X-Request-Id', 'RateLimit-Limit', 'RateLimit-Remaining', 'RateLimit-Reset'];

/** `/v1/conversations/:id` → `/v1/conversations/{id}`. */
export function openApiPath(expressPath: string): string {
  return expressPath.replace(/:(\w+)/g, '{$1}');
}

/** The error codes an operation can answer: those of every route of its kind plus its own. */
function errorCodes(op: Operation): ErrorCode[] {
  const codes: ErrorCode[] = ['GW_ERR_INTERNAL', 'GW_ERR_STORE_UNAVAILABLE'];
  if (op.auth !== false) codes.push('GW_ERR_UNAUTHORIZED', 'GW_ERR_INSUFFICIENT_SCOPE');
  if (op.path.includes(':')) codes.push('GW_ERR_NOT_FOUND', 'GW_ERR_BAD_REQUEST');
  if (op.query || op.body) codes.push('GW_ERR_VALIDATION');
  if (op.query && 'cursor' in op.query.shape) codes.push('GW_ERR_INVALID_CURSOR');
  if (op.method !== 'get') {
    // Every /v1 request that is not a GET may carry a body, which the gate parses before the route.
    codes.push('GW_ERR_INVALID_JSON', 'GW_ERR_PAYLOAD_TOO_LARGE', 'GW_ERR_UNSUPPORTED_MEDIA_TYPE');
    if (!op.body) codes.push('GW_ERR_VALIDATION');
    // Every write may carry an Idempotency-Key (docs/limits.md).
    if (op.auth !== false) codes.push('GW_ERR_IDEMPOTENCY_KEY_REUSED', 'GW_ERR_IDEMPOTENCY_IN_FLIGHT');
  }
  for (const code of op.errors ?? []) codes.push(code);
  return [...new Set(codes)];
}

type JsonSchema = Record<string, unknown>;

/** Drops the keys a stand-alone JSON Schema carries and a component must not (`$schema`, `$id`). */
function component(schema: JsonSchema): JsonSchema {
  const { $schema: _s, $id: _i, ...rest } = schema;
  return rest;
}

/** JSON Schemas of a zod registry, each as `#/components/schemas/<id>`. */
function toComponents(registry: z.core.$ZodRegistry<{ id: string }>, io: 'input' | 'output') {
  const { schemas } = z.toJSONSchema(registry, {
    target: 'draft-2020-12',
    io,
    unrepresentable: 'any',
    uri: (id) => `#/components/schemas/${id}`,
  });
  return Object.fromEntries(Object.entries(schemas).map(([id, s]) => [id, component(s as JsonSchema)]));
}

/** The query parameters of a schema, one per property, as the route reads them (strings). */
function queryParameters(schema: z.ZodObject): JsonSchema[] {
  const js = z.toJSONSchema(schema, { target: 'draft-2020-12', io: 'input', unrepresentable: 'any' }) as {
    properties?: Record<string, JsonSchema>;
    required?: string[];
  };
  return Object.entries(js.properties ?? {}).map(([name, s]) => ({
    name,
    in: 'query',
    required: js.required?.includes(name) ?? false,
    ...(typeof s.description === 'string' ? { description: s.description } : {}),
    schema: s,
  }));
}

const PAGE_PARAMETER_TEXT: Readonly<Record<string, string>> = {
  cursor: 'The `cursor` of the previous page; absent for the first page.',
  take: 'Page size, 1–200 (default 50).',
  order: 'Oldest first (`asc`, the default) or newest first (`desc`).',
};

function problemAnswer(status: number, codes: readonly ErrorCode[]): JsonSchema {
  const headers: Record<string, JsonSchema> = {};
  for (const h of EVERY_ANSWER_HEADERS) headers[h] = { $ref: `#/components/headers/${h}` };
  if (status === 503 || status === 429) headers['Retry-After'] = { $ref: '#/components/headers/Retry-After' };
  if (status === 401)
    headers['WWW-Authenticate'] = { schema: { type: 'string' }, description: '`Bearer realm="switchboard"`' };
  return {
    description: codes.map((c) => `\`${c}\`: ${ERRORS[c].title}`).join('; '),
    headers,
    content: {
      'application/problem+json': {
        schema: {
          allOf: [
            { $ref: '#/components/schemas/Problem' },
            {
              type: 'object',
              properties: {
                ...(codes.length > 0 ? { code: { enum: [...codes] } } : {}),
                status: { const: status },
              },
            },
          ],
        },
      },
    },
  };
}

/** Builds the document. Pure: the same routes give the same document. */
export function buildOpenApiDocument(version: string): JsonSchema {
  const requests = z.registry<{ id: string }>();
  const responses = z.registry<{ id: string }>();
  const idOf = new Map<z.ZodType, string>(NAMED);
  const add = (registry: typeof requests, schema: z.ZodType, fallback: string): string => {
    const id = idOf.get(schema) ?? fallback;
    idOf.set(schema, id);
    if (!registry.has(schema)) registry.add(schema, { id });
    return id;
  };
  add(responses, problemResponse, 'Problem');

  // Error answers are shared by many routes: each distinct one is a component, named by its status.
  const problemResponses: Record<string, JsonSchema> = {};
  const problemNames = new Map<string, string>();
  const problemRef = (answer: JsonSchema, status: number): JsonSchema => {
    const key = JSON.stringify(answer);
    let name = problemNames.get(key);
    if (name === undefined) {
      const taken = Object.keys(problemResponses).filter((n) => n.startsWith(`Error${status}`)).length;
      name = taken === 0 ? `Error${status}` : `Error${status}_${taken + 1}`;
      problemNames.set(key, name);
      problemResponses[name] = answer;
    }
    return { $ref: `#/components/responses/${name}` };
  };

  const paths: Record<string, Record<string, JsonSchema>> = {};
  for (const op of OPERATIONS) {
    const parameters: JsonSchema[] = [...op.path.matchAll(/:(\w+)/g)].map((m) => ({
      name: m[1],
      in: 'path',
      required: true,
      schema: { type: 'string' },
    }));
    if (op.query) {
      for (const p of queryParameters(op.query)) {
        const text = PAGE_PARAMETER_TEXT[p.name as string];
        parameters.push(text && p.description === undefined ? { ...p, description: text } : p);
      }
    }
    if (op.metaFilters) {
      parameters.push({
        name: 'meta',
        in: 'query',
        style: 'deepObject',
        explode: true,
        description:
          'Exact-match filters on top-level meta keys: `meta[<key>]=<value>`, compared as strings.',
        schema: { type: 'object', additionalProperties: { type: 'string' } },
      });
    }
    if (op.method !== 'get' && op.auth !== false) {
      parameters.push({
        name: 'Idempotency-Key',
        in: 'header',
        required: false,
        description:
          'Makes a retry safe: a repeat with the same key and body within 24 hours answers the first answer again (`Idempotent-Replayed: true`) without a second effect; 1–255 printable ASCII characters without spaces.',
        schema: { type: 'string', minLength: 1, maxLength: 255 },
      });
    }
    if (op.ifMatch) {
      parameters.push({
        name: 'If-Match',
        in: 'header',
        required: false,
        description:
          'The `ETag` the change is based on: when the resource has changed since, nothing is written and the answer is 412.',
        schema: { type: 'string' },
      });
    }
    parameters.push({
      name: 'X-Request-Id',
      in: 'header',
      required: false,
      description: 'Kept as the request id when 1–64 of `A-Za-z0-9._-`.',
      schema: { type: 'string' },
    });

    const answers: Record<string, JsonSchema> = {};
    for (const [status, answer] of Object.entries(op.responses)) {
      const headers: Record<string, JsonSchema> = {};
      for (const h of [...EVERY_ANSWER_HEADERS, ...(answer.headers ?? [])])
        headers[h] = { $ref: `#/components/headers/${h}` };
      const content: Record<string, JsonSchema> = {};
      if (answer.schema) {
        const id = add(responses, answer.schema, `${op.id}${status}Response`);
        content['application/json'] = { schema: { $ref: `#/components/schemas/${id}` } };
      }
      for (const media of answer.media ?? []) content[media] = {};
      answers[status] = {
        description: answer.description,
        headers,
        ...(Object.keys(content).length > 0 ? { content } : {}),
      };
    }
    const byStatus = new Map<number, ErrorCode[]>();
    for (const code of errorCodes(op)) {
      const status = ERRORS[code].status;
      byStatus.set(status, [...(byStatus.get(status) ?? []), code]);
    }
    for (const [status, codes] of [...byStatus].sort(([a], [b]) => a - b))
      answers[status] = problemRef(problemAnswer(status, codes), status);
    if (op.auth !== false) {
      const limited = (Object.keys(ERRORS) as ErrorCode[]).filter(
        (c) => (ERRORS[c] as ErrorSpec).status === 429,
      );
      answers['429'] = problemRef(
        {
          ...problemAnswer(429, limited),
          description:
            'Over the rate limit of the key (when rate limits apply); retry after `Retry-After` seconds',
        },
        429,
      );
    }

    // The scope from the gate's own table (src/keys/scopes.ts), so document and enforcement agree.
    const scope = op.auth === false ? undefined : scopeFor(op.method, op.path);
    const operation: JsonSchema = {
      operationId: op.id,
      tags: [op.tag],
      summary: op.summary,
      parameters,
      ...(op.body
        ? {
            requestBody: {
              required: true,
              content: {
                'application/json': {
                  schema: { $ref: `#/components/schemas/${add(requests, op.body, `${op.id}Request`)}` },
                },
              },
            },
          }
        : {}),
      responses: answers,
      ...(op.auth === false ? { security: [] } : {}),
      ...(scope !== undefined ? { security: [{ bearer: [scope] }], 'x-scope': scope } : {}),
    };
    const path = openApiPath(op.path);
    paths[path] = { ...paths[path], [op.method]: operation };
  }

  // Requests are described as they are sent (before defaults and transforms), responses as answered.
  const schemas = { ...toComponents(requests, 'input'), ...toComponents(responses, 'output') };
  return {
    openapi: '3.1.1',
    jsonSchemaDialect: 'https://spec.openapis.org/oas/3.1/dialect/base',
    info: {
      title: 'Switchboard API',
      version,
      description:
        'The `/v1` REST API of the Switchboard chatbot gateway. Every request but this document needs ' +
        '`Authorization: Bearer <key>`. Bodies are `application/json`. Every error is ' +
        '`application/problem+json` with a stable `code`. Lists take `cursor`, `take` (1–200, default 50) ' +
        'and `order` (`asc` | `desc`) and answer `{ items, cursor }`, `cursor` null on the last page. ' +
        'Each operation names the scope a managed key needs (`security`, `x-scope`); keys in `API_KEYS` ' +
        'have every scope, and a key without the scope gets `403 GW_ERR_INSUFFICIENT_SCOPE`.',
    },
    servers: [{ url: '/' }],
    security: [{ bearer: [] }],
    tags: [...new Set(OPERATIONS.map((op) => op.tag))].map((name) => ({ name })),
    paths,
    components: {
      securitySchemes: {
        bearer: {
          type: 'http',
          scheme: 'bearer',
          description:
            'An API key: one of `API_KEYS` (every scope) or a managed key from `POST /v1/keys` (its scopes).',
        },
      },
      headers: HEADERS,
      responses: problemResponses,
      schemas,
    },
  };
}
