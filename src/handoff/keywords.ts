/**
 * @module Handoff keywords (HANDOFF_KEYWORDS): a customer text that contains one of them, as a whole
 * word or phrase and in any case, asks for a human.
 */

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Splits the comma-separated setting into trimmed, non-empty phrases. */
export function parseKeywords(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((k) => k.trim().replace(/\s+/g, ' '))
    .filter((k) => k.length > 0);
}

/**
 * A matcher for `keywords`, or null when there are none. Whole words: "agent" matches "an agent,
 * please" but not "agents" or "reagent"; the spaces of a phrase match any run of white space.
 */
export function keywordMatcher(keywords: readonly string[]): ((text: string) => boolean) | null {
  if (keywords.length === 0) return null;
  const alternatives = keywords.map((k) => k.split(' ').map(escapeRegExp).join('\\s+')).join('|');
  const re = new RegExp(`(?<![\\p{L}\\p{N}_])(?:${alternatives})(?![\\p{L}\\p{N}_])`, 'iu');
  return (text) => re.test(text);
}
