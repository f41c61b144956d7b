/** The nesting scan behind the API's body depth limit: brackets in strings and escapes do not count. */
import { describe, expect, it } from 'vitest';
import { jsonDepth } from '../../src/http/json-depth.js';

const depth = (text: string, limit?: number) => jsonDepth(Buffer.from(text, 'utf8'), limit);

describe('jsonDepth', () => {
  it('counts objects and arrays alike', () => {
    expect(depth('1')).toBe(0);
    expect(depth('{}')).toBe(1);
    expect(depth('{"a":[1,{"b":[]}]}')).toBe(4);
    expect(depth('[[],[[]],[]]')).toBe(3);
  });

  it('ignores brackets inside strings, escaped quotes included', () => {
    expect(depth('{"a":"[[[{{{"}')).toBe(1);
    expect(depth('{"a":"\\"[[[","b":"\\\\"}')).toBe(1);
    expect(depth('["\\\\",[["x"]]]')).toBe(3);
  });

  it('reads multi-byte characters without mistaking their bytes for brackets', () => {
    expect(depth(JSON.stringify({ a: ['é', '💬', '\u5b5b', { '\u225b': '\u7b7d' }] }))).toBe(3);
  });

  it('stops once past the limit', () => {
    const deep = '['.repeat(100_000);
    expect(depth(deep, 64)).toBe(65);
  });
});
