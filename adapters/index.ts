/**
 * @module The adapter registry: a new channel is one folder plus one line here.
 */
import type { AdapterModule } from '../src/core/channel.js';
import api from './api/index.js';
import email from './email/index.js';
import slack from './slack/index.js';
import twilio from './twilio/index.js';
import webchat from './webchat/index.js';
import whatsappCloud from './whatsapp-cloud/index.js';

// biome-ignore lint/suspicious/noExplicitAny: each module carries its own config type
export const ADAPTERS: readonly AdapterModule<any>[] = [api, email, slack, twilio, webchat, whatsappCloud];
