/** Builders for store-level tests. */
import type { AcceptInput } from '../../src/core/store.js';

/** A user message to accept, deduplicated on `dedupeKey` (its text too). */
export function acceptInput(
  conversationId: string,
  dedupeKey: string,
  extra: Partial<AcceptInput> = {},
): AcceptInput {
  return {
    conversationId,
    dedupeKey,
    dedupeTtlS: 60,
    sessionIdleS: 3_600,
    message: { type: 'user', text: dedupeKey, direction: 'inbound' },
    ...extra,
  };
}
