/**
 * The API documentation's error table (docs/api.md, linked from README) is the public list of error
 * codes: it must name exactly the codes of the registry, each with the registry's status.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ERRORS } from '../../src/core/errors.js';

const HEADING = '## Error codes';
const ROW = /^\|\s*`?(GW_ERR_[A-Z0-9_]+)`?\s*\|\s*(\d{3})\s*\|/;

function errorTableSource(): { file: string; text: string } {
  const file = 'docs/api.md';
  const text = readFileSync(fileURLToPath(new URL(`../../${file}`, import.meta.url)), 'utf8');
  if (!text.split('\n').some((line) => line.trim() === HEADING))
    throw new Error(`no "${HEADING}" section in ${file}`);
  return { file, text };
}

/** Code → status from the rows of the table under the heading, up to the next heading of that level. */
function documentedCodes(text: string): Map<string, number> {
  const lines = text.split('\n');
  const start = lines.findIndex((line) => line.trim() === HEADING);
  const rows = new Map<string, number>();
  for (const line of lines.slice(start + 1)) {
    if (/^#{1,2} /.test(line)) break;
    const match = ROW.exec(line.trim());
    if (!match) continue;
    expect(rows.has(match[1]!), `${match[1]} is listed twice`).toBe(false);
    rows.set(match[1]!, Number(match[2]));
  }
  return rows;
}

describe('docs/api.md error table', () => {
  it('lists exactly the registry codes with their statuses', () => {
    const { file, text } = errorTableSource();
    const documented = documentedCodes(text);
    const registry = new Map(Object.entries(ERRORS).map(([code, spec]) => [code, spec.status]));
    expect([...documented.keys()].sort(), `codes in ${file}`).toEqual([...registry.keys()].sort());
    for (const [code, status] of registry)
      expect(documented.get(code), `status of ${code} in ${file}`).toBe(status);
  });
});
