/** @module The built-in demo bot (SPEC §1, §6): answers every text with `You said: <text>`. */
import type { Bot, BotRequest, BotResponse } from './types.js';

export class DemoBot implements Bot {
  readonly kind = 'demo' as const;

  async reply({ message }: BotRequest): Promise<BotResponse> {
    if (message.text.trim() === '') return { replies: [] };
    return { replies: [{ text: `You said: ${message.text}` }] };
  }
}
