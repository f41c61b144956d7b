/**
 * @module Outbound for the API channel: the app's own UI reads replies from the API (or `wait`s for
 * them on `POST /v1/messages`, or follows outbound webhooks), so handing a reply over means storing it.
 */
import type { SendResult } from '../../src/core/index.js';

export async function send(): Promise<SendResult> {
  return { status: 'sent' };
}
