/**
 * The channel capability table: README's copy is the code's (so the two cannot drift), every channel
 * has every cell with a reason, and the decisions read from it (quick replies written out where there
 * are no buttons).
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  CAPABILITIES,
  CAPABILITY_MARKERS,
  capabilityTable,
  forChannel,
  hasTyping,
} from '../../src/channels/capabilities.js';
import { CHANNELS } from '../../src/core/model.js';

const README = readFileSync(fileURLToPath(new URL('../../README.md', import.meta.url)), 'utf8');

describe('channel capabilities', () => {
  it("README's table is the code's table (npm run docs:capabilities rewrites it)", () => {
    const [start, end] = CAPABILITY_MARKERS;
    const from = README.indexOf(start);
    const to = README.indexOf(end);
    expect(from).toBeGreaterThan(0);
    expect(to).toBeGreaterThan(from);
    expect(README.slice(from + start.length, to).trim()).toBe(capabilityTable());
  });

  it('covers every channel, each cell with a reason', () => {
    expect(Object.keys(CAPABILITIES).sort()).toEqual([...CHANNELS].sort());
    for (const caps of Object.values(CAPABILITIES)) {
      for (const cell of Object.values(caps)) expect(cell.reason.length).toBeGreaterThan(5);
    }
  });

  it('typing only where the channel has a way to show it', () => {
    expect(CHANNELS.filter(hasTyping).sort()).toEqual(['slack', 'webchat', 'whatsapp', 'whatsapp_cloud']);
  });

  it('writes quick replies out as a list on channels without buttons, and leaves them elsewhere', () => {
    const reply = { text: 'Pick one', quickReplies: [{ title: 'Yes' }, { title: 'No', payload: 'n' }] };
    for (const channel of ['sms', 'whatsapp', 'email'] as const) {
      expect(forChannel(channel, reply)).toEqual({ text: 'Pick one\n\n• Yes\n• No', quickReplies: [] });
    }
    for (const channel of ['slack', 'webchat', 'whatsapp_cloud', 'api'] as const) {
      expect(forChannel(channel, reply)).toBe(reply);
    }
  });
});
