/**
 * @module Slack settings. The channel is enabled exactly when both the signing secret and the bot token
 * are set; any Slack setting without both is a start-stopping error (fail closed, no bypass).
 */
import { z } from 'zod';
import {
  type AdapterConfigResult,
  type Env,
  type VerifyMode,
  verifyModeSchema,
} from '../../src/core/index.js';

/** Slack's own Web API base; tests and proxies point `SLACK_API_URL` elsewhere. */
export const DEFAULT_SLACK_API_URL = 'https://slack.com/api/';

/** Every environment variable this adapter reads. */
export const SLACK_SETTINGS = [
  'SLACK_SIGNING_SECRET',
  'SLACK_BOT_TOKEN',
  'SLACK_API_URL',
  'SLACK_TEAM_ID',
  'SLACK_AGENT_CHANNEL',
  'SLACK_VERIFY',
  'SLACK_ASSISTANT',
] as const;

export interface SlackConfig {
  /** Verifies the v0 signature of every request Slack sends. */
  signingSecret: string;
  /** `xoxb-` bot token for the Web API (chat.postMessage, users.info, auth.test). */
  botToken: string;
  /** Web API base URL, always ending in `/` (the WebClient appends the method name). */
  apiUrl: string;
  /** When set, events and clicks from any other workspace are ignored (answered 200, nothing stored). */
  teamId?: string;
  /**
   * The agents' desk (SPEC §8): the channel where every handoff gets a card, its thread mirroring
   * the customer and carrying the agents' replies back. Unset: no desk.
   */
  agentChannel?: string;
  /** `enforce` refuses a request whose signature does not verify; `report` accepts and logs it (SPEC §12). */
  verify: VerifyMode;
  /**
   * The app is set up as an assistant ("Agents & AI Apps"): the bot's work shows as the thread's
   * status (status.ts). @default false
   */
  assistant: boolean;
}

const schema = z.object({
  SLACK_SIGNING_SECRET: z.string().min(8, "must be the app's signing secret (Basic Information page)"),
  SLACK_BOT_TOKEN: z.string().regex(/^xoxb-\S+$/, 'must be a bot token starting with "xoxb-"'),
  SLACK_API_URL: z
    .string()
    .url()
    .refine((v) => /^https?:\/\//.test(v), 'must be an http(s) URL')
    .default(DEFAULT_SLACK_API_URL),
  SLACK_TEAM_ID: z
    .string()
    .regex(/^T[A-Z0-9]{2,}$/, 'must be a workspace id such as T0123ABCD')
    .optional(),
  SLACK_AGENT_CHANNEL: z
    .string()
    .regex(/^[CG][A-Z0-9]{2,}$/, 'must be a channel id such as C0123ABCD (not a name)')
    .optional(),
  SLACK_VERIFY: verifyModeSchema,
  SLACK_ASSISTANT: z.enum(['true', 'false']).default('false'),
});

/**
 * Reads the Slack settings.
 * @example configure({ SLACK_SIGNING_SECRET: '8f74…', SLACK_BOT_TOKEN: 'xoxb-…' }) // enabled
 */
export function configure(env: Env): AdapterConfigResult<SlackConfig> {
  const present = SLACK_SETTINGS.filter((k) => env[k] !== undefined && env[k] !== '');
  if (present.length === 0) return { enabled: false };
  const missing = (['SLACK_SIGNING_SECRET', 'SLACK_BOT_TOKEN'] as const).filter((k) => !present.includes(k));
  if (missing.length > 0) {
    return {
      enabled: false,
      errors: missing.map(
        (k) => `${k}: required when ${present.join(', ')} ${present.length > 1 ? 'are' : 'is'} set`,
      ),
    };
  }
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    return { enabled: false, errors: parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`) };
  }
  const d = parsed.data;
  return {
    enabled: true,
    config: {
      signingSecret: d.SLACK_SIGNING_SECRET,
      verify: d.SLACK_VERIFY,
      assistant: d.SLACK_ASSISTANT === 'true',
      botToken: d.SLACK_BOT_TOKEN,
      apiUrl: d.SLACK_API_URL.endsWith('/') ? d.SLACK_API_URL : `${d.SLACK_API_URL}/`,
      ...(d.SLACK_TEAM_ID ? { teamId: d.SLACK_TEAM_ID } : {}),
      ...(d.SLACK_AGENT_CHANNEL ? { agentChannel: d.SLACK_AGENT_CHANNEL } : {}),
    },
  };
}
