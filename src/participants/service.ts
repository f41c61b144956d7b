/**
 * @module The participants of a conversation (SPEC §8): users, bots and agents, kept on the
 * conversation's record. Every change is one atomic step on that record (the handoff room's guarded
 * write, see `HandoffRepo.change`), so of racing callers, in any number of processes, one adds (or
 * removes) a participant; that caller alone records the join (or leave) as an `activity` message and
 * emits `participant.added` (or `participant.removed`), once per change.
 */
import { GatewayError } from '../core/errors.js';
import type { EventHub } from '../core/events.js';
import { newId } from '../core/ids.js';
import type { Conversation, Participant, ParticipantRole } from '../core/model.js';
import type { Store } from '../core/store.js';
import type { HandoffService } from '../handoff/service.js';

export interface ParticipantInput {
  /** Given: the participant's id (adding it again changes nothing). Else one is made. */
  id?: string;
  role: ParticipantRole;
  name?: string;
  address?: string;
  /** A user participant's contact (SPEC §9). */
  contactId?: string;
}

export interface ParticipantDeps {
  store: Store;
  events: EventHub;
  handoff: Pick<HandoffService, 'change'>;
}

/** What an activity message about a participant says, e.g. `Ana joined`. */
export function activityText(p: Participant, action: 'joined' | 'left'): string {
  return `${p.name ?? p.address ?? p.id} ${action}`;
}

export function participantNotFound(id: string): GatewayError {
  return new GatewayError('GW_ERR_NOT_FOUND', `Participant ${id} not found`);
}

/** The participant `id` of the conversation: 404 when it has none, 422 when it is not an agent. */
export function agentOf(conversation: Conversation, id: string): Participant {
  const found = conversation.participants.find((p) => p.id === id);
  if (!found) throw participantNotFound(id);
  if (found.role !== 'agent') {
    throw new GatewayError(
      'GW_ERR_NOT_AN_AGENT',
      `Participant ${id} has role "${found.role}"; only an agent participant can be named in from`,
    );
  }
  return found;
}

export class ParticipantService {
  readonly #deps: ParticipantDeps;

  constructor(deps: ParticipantDeps) {
    this.#deps = deps;
  }

  /**
   * Adds one participant. With an `id` already on the conversation, or (without one) a participant of
   * the same role and address, that one is answered and nothing changes, so a retried request adds
   * nobody twice. Null when the conversation does not exist.
   */
  async add(
    conversationId: string,
    input: ParticipantInput,
  ): Promise<{ participant: Participant; added: boolean } | null> {
    const candidate: Participant = {
      id: input.id ?? newId('part'),
      role: input.role,
      ...(input.name !== undefined ? { name: input.name } : {}),
      ...(input.address !== undefined ? { address: input.address } : {}),
      ...(input.contactId !== undefined ? { contactId: input.contactId } : {}),
    };
    let existing: Participant | undefined;
    const result = await this.#deps.handoff.change(conversationId, (current) => {
      existing = current.participants.find((p) =>
        input.id !== undefined
          ? p.id === input.id
          : input.address !== undefined && p.role === input.role && p.address === input.address,
      );
      return existing ? null : withParticipants(current, [...current.participants, candidate]);
    });
    if (result.kind === 'missing') return null;
    if (!result.changed) return { participant: existing ?? candidate, added: false };
    await this.#announce(result.conversation, candidate, 'joined');
    return { participant: candidate, added: true };
  }

  /**
   * Adds those of `people` the conversation does not have yet (by id), each announced once: the
   * people of a channel's message (everyone writing in a Slack thread, an email's From/To/Cc).
   * Null when the conversation does not exist.
   */
  async join(conversationId: string, people: readonly Participant[]): Promise<Conversation | null> {
    let fresh: Participant[] = [];
    const result = await this.#deps.handoff.change(conversationId, (current) => {
      const seen = new Set(current.participants.map((p) => p.id));
      fresh = [];
      for (const p of people) {
        if (seen.has(p.id)) continue;
        seen.add(p.id);
        fresh.push(p);
      }
      return fresh.length > 0 ? withParticipants(current, [...current.participants, ...fresh]) : null;
    });
    if (result.kind === 'missing') return null;
    if (result.changed) for (const p of fresh) await this.#announce(result.conversation, p, 'joined');
    return result.conversation;
  }

  /**
   * Removes participant `id`; the participant removed, or null when the conversation is gone.
   * @throws GW_ERR_NOT_FOUND when the conversation has no such participant (or it was just removed).
   */
  async remove(conversationId: string, id: string): Promise<Participant | null> {
    let removed: Participant | undefined;
    const result = await this.#deps.handoff.change(conversationId, (current) => {
      removed = current.participants.find((p) => p.id === id);
      return removed
        ? withParticipants(
            current,
            current.participants.filter((p) => p.id !== id),
          )
        : null;
    });
    if (result.kind === 'missing') return null;
    if (!result.changed || !removed) throw participantNotFound(id);
    await this.#announce(result.conversation, removed, 'left');
    return removed;
  }

  async #announce(conversation: Conversation, participant: Participant, action: 'joined' | 'left') {
    const { store, events } = this.#deps;
    const activity = await store.appendMessage(conversation.id, {
      type: 'activity',
      direction: 'internal',
      text: activityText(participant, action),
      participantId: participant.id,
      meta: { participant: { action, id: participant.id, role: participant.role } },
    });
    // The conversation was deleted in between: nothing left to announce.
    if (!activity) return;
    await events.emit({
      type: 'message.created',
      conversationId: conversation.id,
      seq: activity.seq,
      message: activity,
    });
    await events.emit({
      type: action === 'joined' ? 'participant.added' : 'participant.removed',
      conversationId: conversation.id,
      seq: activity.seq,
      conversation,
      participant,
    });
  }
}

function withParticipants(c: Conversation, participants: Participant[]): Conversation {
  return { ...c, participants, updatedAt: new Date().toISOString() };
}
