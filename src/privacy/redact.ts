/**
 * @module PII masking (SPEC §12): each detected entity of a listed type (see src/core/entities.ts) is
 * replaced by its type in brackets, `[email]`, `[phone]`, `[card]`, `[iban]`. The mask is the same
 * whatever the original's length, so not even the length of the data leaves. The message's entity
 * list is recomputed for the masked text: masked spans point at their mask and carry
 * `redacted: true`, and the entities after a mask move with the text. The strings of the message's
 * `meta` are masked too (an email's subject and full text travel there).
 */
import { detectEntities } from '../core/entities.js';
import type { Entity, Message } from '../core/model.js';

export type EntityType = Entity['type'];
export const ENTITY_TYPES: readonly EntityType[] = ['email', 'phone', 'card', 'iban'];

/** Masks `types` in `text`, using `entities` when known (detected otherwise). */
export function redactText(
  text: string,
  types: ReadonlySet<EntityType>,
  entities: readonly Entity[] = detectEntities(text),
): { text: string; entities: Entity[]; masked: number } {
  if (types.size === 0 || entities.length === 0) return { text, entities: [...entities], masked: 0 };
  const sorted = [...entities].sort((a, b) => a.start - b.start);
  let out = '';
  let at = 0;
  let masked = 0;
  const next: Entity[] = [];
  for (const e of sorted) {
    // Overlapping spans (never produced by the detector) are left as they are.
    if (e.start < at || e.end > text.length) continue;
    out += text.slice(at, e.start);
    if (types.has(e.type) && !e.redacted) {
      const mask = `[${e.type}]`;
      next.push({ type: e.type, start: out.length, end: out.length + mask.length, redacted: true });
      out += mask;
      masked += 1;
    } else {
      const value = text.slice(e.start, e.end);
      next.push({ ...e, start: out.length, end: out.length + value.length });
      out += value;
    }
    at = e.end;
  }
  out += text.slice(at);
  return { text: out, entities: next, masked };
}

/**
 * Masks every string inside `value` (a message's `meta`: an email's subject and full text, a
 * provider's fields); the same object when nothing in it is masked.
 */
export function redactDeep<T>(value: T, types: ReadonlySet<EntityType>): T {
  if (typeof value === 'string') {
    const r = redactText(value, types);
    return (r.masked === 0 ? value : r.text) as T;
  }
  if (Array.isArray(value)) {
    const out = value.map((v) => redactDeep(v, types));
    return (out.some((v, i) => v !== value[i]) ? out : value) as T;
  }
  if (value !== null && typeof value === 'object') {
    let changed = false;
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      const r = redactDeep(v, types);
      if (r !== v) changed = true;
      out[k] = r;
    }
    return (changed ? out : value) as T;
  }
  return value;
}

/**
 * A message with its text and the strings of its `meta` masked; the same object when nothing in it
 * is masked.
 */
export function redactMessage<
  M extends Pick<Message, 'text'> & { entities?: Entity[] | undefined; meta?: Message['meta'] | undefined },
>(message: M, types: ReadonlySet<EntityType>): M {
  const r = message.text
    ? redactText(message.text, types, message.entities ?? detectEntities(message.text))
    : undefined;
  const meta = message.meta === undefined ? undefined : redactDeep(message.meta, types);
  if ((r === undefined || r.masked === 0) && meta === message.meta) return message;
  const out = { ...message };
  if (r && r.masked > 0) {
    out.text = r.text;
    out.entities = r.entities;
  }
  if (meta !== message.meta) out.meta = meta;
  return out;
}
