/** @module The API channel needs no settings of its own: it is always on, behind the `/v1` API keys. */
import type { AdapterConfigResult } from '../../src/core/channel.js';

export type ApiChannelConfig = Record<string, never>;

export function configure(): AdapterConfigResult<ApiChannelConfig> {
  return { enabled: true, config: {} };
}
