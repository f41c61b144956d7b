/**
 * The handoff routes of the `/v1` API (SPEC §8) over real HTTP on the embedded store: request
 * (idempotent), assign (adding the agent participant once, 404 for an unknown one), release (409
 * not_in_handoff when there is none), and status changes through PATCH that keep `handoff` in step.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Conversation } from '../../src/core/model.js';
import { type ApiApp, startApiApp } from '../helpers/api-app.js';

let app: ApiApp;

beforeEach(async () => {
  app = await startApiApp();
});
afterEach(async () => {
  await app.close();
});

async function conversation(): Promise<Conversation> {
  const res = await app.api('/v1/conversations', { method: 'POST', json: {} });
  return (await res.json()) as Conversation;
}

const handoffEvents = () =>
  app.events.filter((e) => e.type.startsWith('conversation.handoff_')).map((e) => e.type);

async function problem(res: Response, status: number, code: string): Promise<void> {
  expect(res.status).toBe(status);
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(await res.json()).toMatchObject({ status, code });
}

describe('POST /v1/conversations/:id/handoff', () => {
  it('puts the conversation in handoff once; a repeat answers the same and emits nothing', async () => {
    const c = await conversation();
    const first = await app.api(`/v1/conversations/${c.id}/handoff`, {
      method: 'POST',
      json: { reason: 'vip' },
    });
    expect(first.status).toBe(200);
    const body = (await first.json()) as Conversation;
    expect(body).toMatchObject({
      status: 'handoff',
      handoff: { state: 'pending', reason: 'vip', requestedBy: 'agent' },
    });
    const again = await app.api(`/v1/conversations/${c.id}/handoff`, { method: 'POST', json: {} });
    expect(await again.json()).toEqual(body);
    expect(handoffEvents()).toEqual(['conversation.handoff_requested']);
    expect(await (await app.api(`/v1/conversations/${c.id}`)).json()).toEqual(body);
  });

  it('answers 404 for an unknown conversation or assignee, 400 for a bad body', async () => {
    await problem(
      await app.api('/v1/conversations/conv_01JD8Q0000000000000000NONE/handoff', {
        method: 'POST',
        json: {},
      }),
      404,
      'GW_ERR_NOT_FOUND',
    );
    const c = await conversation();
    await problem(
      await app.api(`/v1/conversations/${c.id}/handoff`, {
        method: 'POST',
        json: { assignee: 'part_nobody' },
      }),
      404,
      'GW_ERR_NOT_FOUND',
    );
    await problem(
      await app.api(`/v1/conversations/${c.id}/handoff`, { method: 'POST', json: { reason: 5 } }),
      400,
      'GW_ERR_VALIDATION',
    );
    expect(((await (await app.api(`/v1/conversations/${c.id}`)).json()) as Conversation).handoff).toBeNull();
  });
});

describe('POST /v1/conversations/:id/handoff/assign', () => {
  it('adds the agent once, assigns, and assigns by id; 404 for an unknown participant id', async () => {
    const c = await conversation();
    const res = await app.api(`/v1/conversations/${c.id}/handoff/assign`, {
      method: 'POST',
      json: { agent: { name: 'Ana', address: 'ana@example.com' } },
    });
    expect(res.status).toBe(200);
    const assigned = (await res.json()) as Conversation;
    const agent = assigned.participants.find((p) => p.role === 'agent')!;
    expect(agent).toMatchObject({ name: 'Ana', address: 'ana@example.com' });
    expect(assigned).toMatchObject({
      status: 'handoff',
      handoff: { state: 'assigned', assignee: agent.id, requestedBy: 'agent' },
    });
    // A retry adds nobody and changes nothing.
    const retried = (await (
      await app.api(`/v1/conversations/${c.id}/handoff/assign`, {
        method: 'POST',
        json: { agent: { name: 'Ana', address: 'ana@example.com' } },
      })
    ).json()) as Conversation;
    expect(retried.participants.filter((p) => p.role === 'agent')).toHaveLength(1);
    const byId = await app.api(`/v1/conversations/${c.id}/handoff/assign`, {
      method: 'POST',
      json: { agent: { id: agent.id, name: 'Ana' } },
    });
    expect(((await byId.json()) as Conversation).handoff?.assignee).toBe(agent.id);
    expect(handoffEvents()).toEqual(['conversation.handoff_requested', 'conversation.handoff_assigned']);
    // Naming another agent while in handoff assigns them.
    const bo = (await (
      await app.api(`/v1/conversations/${c.id}/handoff/assign`, {
        method: 'POST',
        json: { agent: { name: 'Bo' } },
      })
    ).json()) as Conversation;
    const boId = bo.handoff!.assignee!;
    expect(boId).not.toBe(agent.id);
    const back = await app.api(`/v1/conversations/${c.id}/handoff`, {
      method: 'POST',
      json: { assignee: agent.id },
    });
    expect(((await back.json()) as Conversation).handoff).toMatchObject({
      state: 'assigned',
      assignee: agent.id,
    });
    expect(handoffEvents()).toEqual([
      'conversation.handoff_requested',
      'conversation.handoff_assigned',
      'conversation.handoff_assigned',
      'conversation.handoff_assigned',
    ]);
    await problem(
      await app.api(`/v1/conversations/${c.id}/handoff/assign`, {
        method: 'POST',
        json: { agent: { id: 'part_01JD8Q0000000000000000NONE', name: 'Bo' } },
      }),
      404,
      'GW_ERR_NOT_FOUND',
    );
  });
});

describe('DELETE /v1/conversations/:id/handoff', () => {
  it('releases back to the bot, then answers 409 not_in_handoff', async () => {
    const c = await conversation();
    await problem(
      await app.api(`/v1/conversations/${c.id}/handoff`, { method: 'DELETE' }),
      409,
      'GW_ERR_NOT_IN_HANDOFF',
    );
    await app.api(`/v1/conversations/${c.id}/handoff`, { method: 'POST', json: {} });
    const res = await app.api(`/v1/conversations/${c.id}/handoff`, { method: 'DELETE' });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: 'open', handoff: null, handoffResume: { afterSeq: 0 } });
    await problem(
      await app.api(`/v1/conversations/${c.id}/handoff`, { method: 'DELETE' }),
      409,
      'GW_ERR_NOT_IN_HANDOFF',
    );
    expect(handoffEvents()).toEqual(['conversation.handoff_requested', 'conversation.handoff_released']);
  });

  it('is ended by closing the conversation; PATCH status moves through the same states', async () => {
    const c = await conversation();
    const entered = await app.api(`/v1/conversations/${c.id}`, {
      method: 'PATCH',
      json: { status: 'handoff' },
    });
    expect(await entered.json()).toMatchObject({ status: 'handoff', handoff: { state: 'pending' } });
    const closed = await app.api(`/v1/conversations/${c.id}`, {
      method: 'PATCH',
      json: { status: 'closed' },
    });
    expect(await closed.json()).toMatchObject({ status: 'closed', handoff: null });
    expect(handoffEvents()).toEqual(['conversation.handoff_requested', 'conversation.handoff_released']);
    await problem(
      await app.api(`/v1/conversations/${c.id}/handoff`, { method: 'DELETE' }),
      409,
      'GW_ERR_NOT_IN_HANDOFF',
    );
  });
});
