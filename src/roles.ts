/**
 * @module What each `ROLE` runs (docs/running.md#roles). `web` takes traffic in: provider webhooks, the
 * `/v1` API, web chat, the console and inbound listeners (SMTP); it accepts messages into the shared
 * queue and never works on them. `worker` works on them: the engine, the outbound webhook dispatcher
 * and the background jobs that must run somewhere (handoff idle release, retention); its port answers
 * health and metrics only. `all` is both in one process. The two halves meet only in Redis (queue,
 * bus), so `web` and `worker` refuse the embedded backend.
 */
import type { AppConfig } from '../config/schema.js';

export type Role = AppConfig['ROLE'];

export interface RolePlan {
  readonly role: Role;
  /** The whole HTTP surface; false: `/healthz`, `/readyz` and `/metrics` only, everything else 404. */
  readonly traffic: boolean;
  /** Adapters' listeners (`ChannelAdapter.start`: WebSocket upgrades, SMTP); sending works without. */
  readonly listeners: boolean;
  /** The engine claims and processes queued messages. */
  readonly engine: boolean;
  /** The outbound webhook dispatcher sends queued deliveries. */
  readonly dispatcher: boolean;
  /** Jobs on a timer: handoff idle release, retention. */
  readonly jobs: boolean;
}

export function rolePlan(role: Role): RolePlan {
  const web = role !== 'worker';
  const worker = role !== 'web';
  return { role, traffic: web, listeners: web, engine: worker, dispatcher: worker, jobs: worker };
}

/** The refusal of a split role on the embedded backend, whose queue no other process can see. */
export function embeddedRoleProblem(role: Role): string | null {
  return role === 'all'
    ? null
    : `ROLE=${role} runs only part of the gateway and needs REDIS_URL, shared with the processes that run the rest; the embedded backend is one process: use ROLE=all (the default) there`;
}
