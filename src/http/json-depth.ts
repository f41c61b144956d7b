/**
 * @module The nesting limit of request bodies. `JSON.parse` takes any depth, but whatever walks the
 * value afterwards (validation, cloning, the store's serializer) recurses, and a body of a few
 * kilobytes nested thousands of levels deep exhausts the stack: a 500 from a client's mistake, or an
 * attacker's. The raw bytes are scanned before they are parsed, so such a body is never built at all.
 */
import { TextDecoder } from 'node:util';
import { GatewayError } from '../core/errors.js';
import { validationError } from './api/schemas.js';

/** Deepest nesting of objects and arrays accepted in a request body; `{"a":[1]}` is 2 deep. */
export const MAX_JSON_DEPTH = 64;

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_BRACE = 0x7b;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACE = 0x7d;
const CLOSE_BRACKET = 0x5d;

/**
 * The deepest nesting in a JSON text, counting brackets outside strings, stopping early once past
 * `limit`. Works on UTF-8 bytes (every byte of a multi-byte character is 0x80 or above, so none is
 * taken for a bracket or quote). Malformed text gets some number; the parser then refuses it.
 */
export function jsonDepth(bytes: Uint8Array, limit = Number.POSITIVE_INFINITY): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i];
    if (inString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) inString = false;
    } else if (c === QUOTE) {
      inString = true;
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      depth++;
      if (depth > deepest) {
        deepest = depth;
        if (deepest > limit) return deepest;
      }
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      depth--;
    }
  }
  return deepest;
}

/** The body re-encoded as UTF-8; a UTF charset the platform cannot decode (UTF-32) is refused. */
function asUtf8(buf: Buffer, encoding: string): Buffer {
  let decoder: TextDecoder;
  try {
    decoder = new TextDecoder(encoding);
  } catch {
    throw new GatewayError(
      'GW_ERR_UNSUPPORTED_MEDIA_TYPE',
      'Send the body as UTF-8 (or UTF-16) application/json',
    );
  }
  return Buffer.from(decoder.decode(buf), 'utf8');
}

/**
 * A body-parser `verify` hook: refuses a body nested deeper than {@link MAX_JSON_DEPTH} with 400
 * `GW_ERR_INVALID_JSON` before it is parsed. Bodies in another UTF encoding are decoded first.
 */
export function refuseDeepJson(_req: unknown, _res: unknown, buf: Buffer, encoding: string): void {
  const bytes = encoding.toLowerCase().replace('-', '') === 'utf8' ? buf : asUtf8(buf, encoding);
  if (jsonDepth(bytes, MAX_JSON_DEPTH) > MAX_JSON_DEPTH) {
    throw validationError([
      {
        field: '(body)',
        message: `must not nest objects and arrays more than ${MAX_JSON_DEPTH} levels deep`,
      },
    ]);
  }
}
