/**
 * @module Retention (SPEC §12; docs/production.md): erases conversations idle past
 * `RETENTION_DAYS`, one process at a time. {@link createRetention} builds the job, or nothing when
 * the setting is unset (keep everything).
 */
import type { Logger } from 'pino';
import type { ContactService } from '../contacts/service.js';
import { createSweeper } from '../contacts/sweep.js';
import type { EventHub } from '../core/events.js';
import type { Store } from '../core/store.js';
import type { Metrics } from '../metrics.js';
import { RetentionJob } from './job.js';
import { jobLockFor } from './lock.js';

export { RetentionJob, type RetentionRun } from './job.js';
export { type JobLock, jobLockFor } from './lock.js';

export function createRetention(deps: {
  days: number | undefined;
  store: Store;
  contacts: ContactService;
  events: EventHub;
  metrics: Metrics;
  logger: Logger;
}): RetentionJob | undefined {
  if (deps.days === undefined) return undefined;
  return new RetentionJob({
    store: deps.store,
    contacts: deps.contacts,
    sweeper: createSweeper(deps.store),
    events: deps.events,
    metrics: deps.metrics,
    logger: deps.logger.child({ job: 'retention' }),
    lock: jobLockFor(deps.store, 'retention'),
    days: deps.days,
  });
}
