/**
 * Writes the channel capability table (src/channels/capabilities.ts) into README.md between its
 * markers; test/unit/capabilities.test.ts fails when the two differ. Run: `npm run docs:capabilities`.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CAPABILITY_MARKERS, capabilityTable } from '../src/channels/capabilities.js';

const readme = fileURLToPath(new URL('../README.md', import.meta.url));
const text = readFileSync(readme, 'utf8');
const [start, end] = CAPABILITY_MARKERS;
const from = text.indexOf(start);
const to = text.indexOf(end);
if (from < 0 || to < from) throw new Error(`README.md has no ${start} … ${end} block`);
writeFileSync(readme, `${text.slice(0, from + start.length)}\n${capabilityTable()}\n${text.slice(to)}`);
