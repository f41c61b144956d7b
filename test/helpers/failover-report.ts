/** Assertions on a failover run's report (kept apart from the rigs, which the bench also loads). */
import { expect } from 'vitest';
import type { LoadReport } from './redis-rigs.js';

/**
 * Asserts a failover run was clean: nothing acknowledged lost, repeated or reordered at the bot, every
 * message answered and acknowledged in the end, and every refusal a 503 with Retry-After.
 */
export function expectClean(report: LoadReport): void {
  const summary = JSON.stringify({
    ...report,
    lost: report.lost.length,
    duplicated: report.duplicated.length,
  });
  expect(report.lost, summary).toEqual([]);
  expect(report.duplicated, summary).toEqual([]);
  expect(report.reordered, summary).toEqual([]);
  expect(report.unanswered).toBe(0);
  expect(report.acknowledged).toBe(report.sent);
  expect(report.without503RetryAfter).toBe(0);
  expect(
    Object.keys(report.statuses).filter((s) => s !== '503' && s !== 'network'),
    summary,
  ).toEqual([]);
}
