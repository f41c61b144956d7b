/**
 * @module The API channel (SPEC §5): conversations started by an app through `POST /v1/sessions` and
 * fed through `POST /v1/messages`. Its routes live with the `/v1` API. It has no `send`: the app's own
 * UI reads replies from the API (or `wait`s for them on `POST /v1/messages`, or follows outbound
 * webhooks), so a reply is delivered by being stored, and is stored as `sent`.
 */
import { defineAdapter } from '../../src/core/index.js';
import { type ApiChannelConfig, configure } from './config.js';

export default defineAdapter<ApiChannelConfig>({
  name: 'api',
  settings: [],
  configure,
  create(ctx) {
    return {
      name: 'api',
      channels: ['api'],
      describe: () => [`api: POST ${ctx.publicUrl}/v1/sessions, then POST ${ctx.publicUrl}/v1/messages`],
    };
  },
});
