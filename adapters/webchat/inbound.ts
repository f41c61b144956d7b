/**
 * @module Pure parsing of the frames a browser sends (SPEC §7) and their mapping onto the conversation
 * model. Nothing here touches a socket or the store, so every bad input is testable in isolation.
 */
import { z } from 'zod';
import type { Attachment, NewMessage } from '../../src/core/index.js';
import { MAX_ATTACHMENTS_PER_MESSAGE } from './uploads.js';
import type { Visitor } from './verify.js';

/** Longest text accepted in one message (the frame limit bounds it too). */
export const MAX_TEXT_CHARS = 8_000;

const clientMessageId = z.string().regex(/^[A-Za-z0-9._:-]{1,128}$/, 'must be 1-128 of A-Z a-z 0-9 . _ : -');
const seq = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

const frameSchemas = {
  auth: z.object({ type: z.literal('auth'), token: z.string().min(1).max(8_192) }),
  message: z
    .object({
      type: z.literal('message'),
      clientMessageId,
      text: z.string().max(MAX_TEXT_CHARS).default(''),
      /** A quick-reply button's payload, when the text came from one. */
      payload: z.string().max(256).optional(),
      /** Files uploaded first (`POST /webchat/uploads`), by the id the upload answered. */
      attachments: z
        .array(z.object({ id: z.string().regex(/^att_[0-9a-f]{32}$/, 'must be an uploaded file id') }))
        .max(MAX_ATTACHMENTS_PER_MESSAGE)
        .optional(),
    })
    .refine((m) => m.text.trim().length > 0 || (m.attachments?.length ?? 0) > 0, {
      message: 'must not be blank (unless the message carries a file)',
      path: ['text'],
    }),
  typing: z.object({ type: z.literal('typing'), on: z.boolean().default(true) }),
  read: z.object({ type: z.literal('read'), seq }),
  resume: z.object({ type: z.literal('resume'), afterSeq: seq }),
} as const;

export type ClientFrameType = keyof typeof frameSchemas;
export type ClientFrame = { [K in ClientFrameType]: z.infer<(typeof frameSchemas)[K]> }[ClientFrameType];
export type MessageFrame = z.infer<typeof frameSchemas.message>;

/** Error codes of `error` frames for bad input (documented in the adapter README). */
export type FrameErrorCode = 'invalid_json' | 'unknown_type' | 'invalid_frame';

export type FrameParse =
  | { ok: true; frame: ClientFrame }
  | { ok: false; code: FrameErrorCode; message: string };

function isFrameType(type: unknown): type is ClientFrameType {
  return typeof type === 'string' && Object.hasOwn(frameSchemas, type);
}

/**
 * Parses one text frame. The error messages name fields and rules only, never the frame's content
 * (it is the visitor's text and may be anything).
 */
export function parseClientFrame(data: string): FrameParse {
  let value: unknown;
  try {
    value = JSON.parse(data);
  } catch {
    return { ok: false, code: 'invalid_json', message: 'The frame is not valid JSON' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, code: 'invalid_frame', message: 'A frame is a JSON object with a "type"' };
  }
  const type = (value as { type?: unknown }).type;
  if (type === undefined) return { ok: false, code: 'invalid_frame', message: 'The frame has no "type"' };
  if (!isFrameType(type)) {
    return {
      ok: false,
      code: 'unknown_type',
      message: 'Unknown frame type; expected auth, message, typing, read or resume',
    };
  }
  const parsed = frameSchemas[type].safeParse(value);
  if (!parsed.success) {
    const fields = parsed.error.issues.map((i) => `${i.path.join('.') || 'frame'}: ${i.message}`);
    return { ok: false, code: 'invalid_frame', message: `Invalid ${type} frame: ${fields.join('; ')}` };
  }
  return { ok: true, frame: parsed.data as ClientFrame };
}

/** The stored form of a visitor's message. */
export function toNewMessage(
  frame: MessageFrame,
  visitor: Visitor,
  attachments: Attachment[] = [],
): NewMessage {
  return {
    type: 'user',
    direction: 'inbound',
    text: frame.text,
    name: visitor.name,
    // The visitor is the conversation's user participant (its id is the visitor id).
    participantId: visitor.id,
    clientMessageId: frame.clientMessageId,
    ...(attachments.length > 0 ? { attachments } : {}),
    ...(frame.payload !== undefined ? { meta: { quickReplyPayload: frame.payload } } : {}),
  };
}
