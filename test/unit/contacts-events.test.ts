/** The `contact.*` events as webhook receivers get them: no conversation, the contact's own lane. */
import { describe, expect, it } from 'vitest';
import { EVENT_TYPES } from '../../src/core/events.js';
import { toWebhookEvent } from '../../src/webhooks/events.js';
import { lanePlace } from '../../src/webhooks/repo.js';

describe('contact events', () => {
  it('are subscribable, carry the contact and no conversation, and keep their order per contact', () => {
    for (const t of ['created', 'updated', 'merged', 'unmerged', 'deleted'])
      expect(EVENT_TYPES).toContain(`contact.${t}`);
    const merged = toWebhookEvent({
      type: 'contact.merged',
      conversationId: 'ct_01ARZ3NDEKTSV4RRFFQ69G5FAV',
      seq: 0,
      at: '2026-01-01T00:00:00.000Z',
      contact: { id: 'ct_01ARZ3NDEKTSV4RRFFQ69G5FAV' },
      otherContactId: 'ct_01ARZ3NDEKTSV4RRFFQ69G5FAW',
      by: 'agent:kim',
      reason: 'same person',
      conversationIds: ['conv_01ARZ3NDEKTSV4RRFFQ69G5FAV'],
    });
    expect(merged).toMatchObject({
      type: 'contact.merged',
      conversationId: null,
      data: {
        contact: { id: 'ct_01ARZ3NDEKTSV4RRFFQ69G5FAV' },
        otherContactId: 'ct_01ARZ3NDEKTSV4RRFFQ69G5FAW',
        by: 'agent:kim',
        reason: 'same person',
        conversationIds: ['conv_01ARZ3NDEKTSV4RRFFQ69G5FAV'],
      },
    });
    const data = {
      id: 'dlv_1',
      endpointId: 'wh_1',
      eventId: merged.id,
      eventType: merged.type,
      conversationId: null,
      lane: 'ct_01ARZ3NDEKTSV4RRFFQ69G5FAV',
      seq: 0,
      body: '{}',
      replayOf: null,
      createdAt: merged.createdAt,
    };
    expect(lanePlace(data)).toBe('after');
  });
});
