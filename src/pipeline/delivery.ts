/**
 * @module Maps provider message ids back to stored messages, and applies provider status callbacks
 * monotonically (SPEC §3): a late or repeated callback never moves a status back. While tracing is on
 * the mapping also keeps the send's span, and a status callback's span links to it (SPEC §12).
 */

import type { DeliveryReporter } from '../core/channel.js';
import type { EventHub } from '../core/events.js';
import type { ChannelName, DeliveryStatus, Message } from '../core/model.js';
import type { DeliveryUpdateOptions, Store } from '../core/store.js';
import { currentTraceparent, linkActiveSpan } from '../tracing/index.js';

/** Provider ids are remembered this long; status callbacks come within hours, read receipts within days. */
const EXTERNAL_ID_TTL_S = 30 * 86_400;

export class DeliveryService implements DeliveryReporter {
  readonly #store: Store;
  readonly #events: EventHub;

  constructor(store: Store, events: EventHub) {
    this.#store = store;
    this.#events = events;
  }

  async remember(
    channel: ChannelName,
    externalId: string,
    conversationId: string,
    messageId: string,
  ): Promise<void> {
    // Called inside the send's span: its traceparent (when tracing is on) is the mapping's third field.
    const traceparent = currentTraceparent();
    const ref = `${conversationId} ${messageId}${traceparent ? ` ${traceparent}` : ''}`;
    await this.#store.kv.set(key(channel, externalId), ref, EXTERNAL_ID_TTL_S);
  }

  async report(
    channel: ChannelName,
    externalId: string,
    status: DeliveryStatus,
    error?: { code?: string; message: string },
  ): Promise<{ found: boolean; changed: boolean }> {
    const ref = await this.#store.kv.get(key(channel, externalId));
    if (!ref) return { found: false, changed: false };
    const [conversationId = '', messageId = '', traceparent] = ref.split(' ');
    linkActiveSpan(traceparent, { 'switchboard.delivery.status': status });
    return this.apply(conversationId, messageId, status, error);
  }

  /**
   * Applies a status to a known message and emits `message.delivery` when it moved; `message` is the
   * message as stored afterwards.
   */
  async apply(
    conversationId: string,
    messageId: string,
    status: DeliveryStatus,
    error?: { code?: string; message: string },
    options?: DeliveryUpdateOptions,
  ): Promise<{ found: boolean; changed: boolean; message?: Message }> {
    const result = await this.#store.updateDelivery(conversationId, messageId, status, error, options);
    if (!result) return { found: false, changed: false };
    if (result.changed) {
      await this.#events.emit({
        type: 'message.delivery',
        conversationId,
        seq: result.message.seq,
        message: result.message,
      });
    }
    return { found: true, changed: result.changed, message: result.message };
  }
}

function key(channel: ChannelName, externalId: string): string {
  return `ext:${channel}:${externalId}`;
}
