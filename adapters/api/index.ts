/**
 * @module The API channel (SPEC §5): conversations started by an app through `POST /v1/sessions` and
 * fed through `POST /v1/messages`. Its routes live with the `/v1` API; this adapter only sends.
 */
import { defineAdapter } from '../../src/core/index.js';
import { type ApiChannelConfig, configure } from './config.js';
import { send } from './outbound.js';

export default defineAdapter<ApiChannelConfig>({
  name: 'api',
  settings: [],
  configure,
  create(ctx) {
    return {
      name: 'api',
      channels: ['api'],
      send,
      describe: () => [`api: POST ${ctx.publicUrl}/v1/sessions, then POST ${ctx.publicUrl}/v1/messages`],
    };
  },
});
