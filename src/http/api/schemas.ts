/**
 * @module Request schemas of the conversation API (zod) and the one way validation failures are
 * reported: 400 `GW_ERR_VALIDATION` with `errors: [{ field, message }]`, each field named by its path
 * (`participants.0.role`) and each message phrased for a person fixing a request.
 */
import { z } from 'zod';
import { ERRORS, type ErrorCode, GatewayError } from '../../core/errors.js';
import {
  CHANNELS,
  CONVERSATION_STATUSES,
  DELIVERY_STATUSES,
  DIRECTIONS,
  HANDOFF_REQUESTERS,
  HANDOFF_STATES,
  MESSAGE_TYPES,
  PARTICIPANT_ROLES,
} from '../../core/model.js';

/** One problem with one field of a request. `(body)` names the body as a whole. */
export interface FieldError {
  field: string;
  message: string;
}

/** The 400 for a list of field errors; `detail` names every field. */
export function validationError(errors: readonly FieldError[]): GatewayError {
  return new GatewayError('GW_ERR_VALIDATION', errors.map((e) => `${e.field}: ${e.message}`).join('; '), {
    errors,
  });
}

const KIND: Readonly<Record<string, string>> = {
  array: 'an array',
  object: 'an object',
  record: 'an object',
  int: 'an integer',
};

/** `1 character`, `5 characters`. */
function count(n: number | bigint, noun: string): string {
  return `${n} ${Number(n) === 1 ? noun : `${noun}s`}`;
}

/** Messages for the generic issues, so no schema has to spell them out; `undefined` keeps zod's own. */
const errorMap: z.core.$ZodErrorMap = (issue) => {
  switch (issue.code) {
    case 'invalid_type':
      if (issue.input === undefined) return 'is required';
      return `must be ${KIND[issue.expected] ?? `a ${issue.expected}`}`;
    case 'invalid_value':
      return `must be one of: ${issue.values.map(String).join(', ')}`;
    case 'too_small':
      if (issue.origin === 'string') {
        return Number(issue.minimum) === 1
          ? 'must not be empty'
          : `must be at least ${count(issue.minimum, 'character')} long`;
      }
      if (issue.origin === 'array') {
        return Number(issue.minimum) === 1
          ? 'must not be empty'
          : `must have at least ${count(issue.minimum, 'item')}`;
      }
      return `must be at least ${issue.minimum}`;
    case 'too_big':
      if (issue.origin === 'string') return `must be at most ${count(issue.maximum, 'character')} long`;
      if (issue.origin === 'array') return `must have at most ${count(issue.maximum, 'item')}`;
      return `must be at most ${issue.maximum}`;
    case 'invalid_key':
      return 'has a key that is empty or longer than 128 characters';
    default:
      return undefined;
  }
};

function fieldErrors(issue: z.core.$ZodIssue): FieldError[] {
  // A bad record key is reported at the key itself (possibly empty or huge); name the record instead.
  const path = (issue.code === 'invalid_key' ? issue.path.slice(0, -1) : issue.path).join('.');
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((key) => ({
      field: path ? `${path}.${key}` : key,
      message: 'is not a known field',
    }));
  }
  return [{ field: path || '(body)', message: issue.message }];
}

/**
 * Parses `input` (a body, or query parameters) against `schema`.
 * @throws GatewayError `GW_ERR_VALIDATION` naming every failing field.
 */
export function parseInput<T>(schema: z.ZodType<T>, input: unknown): T {
  const result = schema.safeParse(input, { error: errorMap });
  if (!result.success) throw validationError(result.error.issues.flatMap(fieldErrors));
  return result.data;
}

/**
 * Free-form metadata: a flat JSON object. In a PATCH a key set to `null` is removed. Keys are bounded
 * so they stay usable in `meta[<key>]=` filters.
 */
export const metaSchema = z.record(z.string().min(1).max(128), z.unknown());

const participantSchema = z.strictObject({
  /** Generated when absent. */
  id: z.string().min(1).max(200).optional(),
  role: z.enum(PARTICIPANT_ROLES),
  address: z.string().max(320).optional(),
  name: z.string().max(200).optional(),
});

/** `POST /v1/conversations`. */
export const createConversationSchema = z.strictObject({
  channel: z.enum(CHANNELS).default('api'),
  participants: z
    .array(participantSchema)
    .max(100)
    .refine(
      (list) => {
        const ids = list.flatMap((p) => (p.id === undefined ? [] : [p.id]));
        return new Set(ids).size === ids.length;
      },
      { message: 'must not repeat a participant id' },
    )
    .optional(),
  meta: metaSchema.optional(),
});

/** `PATCH /v1/conversations/:id`. */
export const patchConversationSchema = z
  .strictObject({
    status: z.enum(CONVERSATION_STATUSES).optional(),
    meta: metaSchema.optional(),
  })
  .refine((patch) => patch.status !== undefined || patch.meta !== undefined, {
    message: 'must set at least one of: status, meta',
  });

const nameSchema = z.string().max(200);
const descriptionSchema = z.string().max(2000);

/** `POST /v1/conversations/:id/messages`. */
export const createMessageSchema = z.strictObject({
  type: z.enum(MESSAGE_TYPES),
  text: z.string(),
  name: nameSchema.optional(),
  description: descriptionSchema.optional(),
  meta: metaSchema.optional(),
});

/** `PATCH /v1/conversations/:id/messages/:mid`. */
export const patchMessageSchema = z
  .strictObject({
    text: z.string().optional(),
    name: nameSchema.optional(),
    description: descriptionSchema.optional(),
    meta: metaSchema.optional(),
  })
  .refine((patch) => Object.values(patch).some((v) => v !== undefined), {
    message: 'must set at least one of: text, name, description, meta',
  });

/** `GET /v1/conversations/:id/export`. */
export const exportQuerySchema = z.strictObject({
  format: z.enum(['jsonl', 'text']).default('jsonl'),
});

// Response schemas: what the routes answer. They are not used to parse anything at run time; they
// are the source of the OpenAPI document (`GET /v1/openapi.json`), and the integration tests check
// real answers against that document, so a field added to a record without its schema fails a test.

const timestamp = z.iso.datetime({ offset: true });

export const participantResponse = z.object({
  id: z.string(),
  role: z.enum(PARTICIPANT_ROLES),
  address: z.string().optional(),
  name: z.string().optional(),
  contactId: z.string().optional().meta({ description: 'For user participants: the contact they are.' }),
});

export const handoffResponse = z.object({
  state: z.enum(HANDOFF_STATES),
  reason: z.string(),
  requestedBy: z.enum(HANDOFF_REQUESTERS),
  assignee: z.string().optional().meta({ description: "The agent participant's id, once assigned." }),
  requestedAt: timestamp,
  assignedAt: timestamp.optional(),
  releaseAt: timestamp.optional(),
});

export const conversationResponse = z.object({
  id: z.string(),
  channel: z.enum(CHANNELS),
  channelRef: z.string(),
  participants: z.array(participantResponse),
  status: z.enum(CONVERSATION_STATUSES),
  handoff: handoffResponse.nullable().meta({ description: 'Set exactly while `status` is `handoff`.' }),
  handoffResume: z.object({ afterSeq: z.number().int(), at: timestamp }).optional(),
  routes: z
    .array(z.object({ channel: z.enum(CHANNELS), channelRef: z.string(), meta: metaSchema }))
    .optional()
    .meta({
      description:
        'With `CONVERSATION_SCOPE=contact`: every channel thread the conversation is reached by, the first being its own.',
    }),
  sessionId: z.string(),
  sessionStartedAt: timestamp,
  sessionState: z.record(z.string(), z.unknown()),
  meta: metaSchema,
  createdAt: timestamp,
  updatedAt: timestamp,
  lastMessageAt: timestamp.nullable(),
});

const entityResponse = z.object({
  type: z.enum(['email', 'phone', 'card', 'iban']),
  start: z.number().int(),
  end: z.number().int(),
  redacted: z
    .literal(true)
    .optional()
    .describe('The span is a mask put in place of the data (PII_REDACT_STORE)'),
});

export const messageResponse = z.object({
  id: z.string(),
  conversationId: z.string(),
  seq: z.number().int(),
  type: z.enum(MESSAGE_TYPES),
  text: z.string(),
  name: z.string().optional(),
  description: z.string().optional(),
  meta: metaSchema,
  entities: z.array(entityResponse),
  direction: z.enum(DIRECTIONS),
  channel: z.enum(CHANNELS).optional().meta({
    description: 'With `CONVERSATION_SCOPE=contact`: the channel the message came in by or went out through.',
  }),
  channelRef: z.string().optional().meta({ description: 'The channel thread, beside `channel`.' }),
  externalId: z.string().optional(),
  clientMessageId: z.string().optional(),
  sessionId: z.string().optional(),
  attachments: z.array(
    z.object({
      url: z.string(),
      contentType: z.string(),
      name: z.string().optional(),
      size: z.number().int().optional(),
    }),
  ),
  quickReplies: z.array(z.object({ title: z.string(), payload: z.string().optional() })).optional(),
  delivery: z
    .object({
      status: z.enum(DELIVERY_STATUSES),
      error: z.object({ code: z.string().optional(), message: z.string() }).optional(),
      at: timestamp,
    })
    .optional()
    .meta({ description: 'Outbound messages only.' }),
  processing: z
    .object({
      state: z.enum(['queued', 'processing', 'done', 'skipped', 'error']),
      attempts: z.number().int(),
      error: z.object({ code: z.string(), message: z.string() }).optional(),
      replyIds: z.array(z.string()).optional(),
      at: timestamp,
    })
    .optional()
    .meta({ description: 'Inbound messages that pass through the queue only.' }),
  replyTo: z.string().optional(),
  participantId: z.string().optional(),
  traceparent: z.string().optional().meta({
    description:
      'While tracing is on (OTEL_EXPORTER_OTLP_ENDPOINT): the W3C traceparent of the trace the message belongs to, to find it in the tracing backend.',
  }),
  createdAt: timestamp,
  updatedAt: timestamp,
});

/** A page of a list (SPEC §5): `cursor` is opaque and `null` on the last page. */
export function pageResponse<T extends z.ZodType>(item: T) {
  return z.object({
    items: z.array(item),
    cursor: z
      .string()
      .nullable()
      .meta({ description: 'Pass as `cursor` for the next page; null on the last.' }),
  });
}

/** The answer of a DELETE: the id of what is gone. */
export const deletedResponse = z.object({ id: z.string() });

/** `PATCH /v1/conversations/:id/messages/:mid`: the message's id and its entities found again. */
export const patchedMessageResponse = z.object({ id: z.string(), entities: z.array(entityResponse) });

/** Every error answer (RFC 9457 `application/problem+json`) with its stable `code` from the registry. */
export const problemResponse = z.looseObject({
  type: z
    .string()
    .meta({ description: 'Identifies the error; the code appended to a fixed base. Need not resolve.' }),
  title: z.string(),
  status: z.number().int(),
  detail: z.string(),
  code: z.enum(Object.keys(ERRORS) as [ErrorCode, ...ErrorCode[]]),
  requestId: z.string().meta({ description: 'The `X-Request-Id` of the request.' }),
  errors: z
    .array(z.object({ field: z.string(), message: z.string() }))
    .optional()
    .meta({ description: '`GW_ERR_VALIDATION`: every failing field, by its path (`participants.0.role`).' }),
  field: z.string().optional().meta({ description: 'The request field the error is about, when one is.' }),
  retryAfter: z.number().optional().meta({ description: 'Seconds; also sent as `Retry-After`.' }),
  limit: z.number().int().optional().meta({ description: '`GW_ERR_PAYLOAD_TOO_LARGE`: the limit in bytes.' }),
});
