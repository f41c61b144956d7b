import { describe, expect, it } from 'vitest';
import { extend } from '../../src/core/extend.js';

describe('extend', () => {
  it('makes what `{ ...base, ...fields }` makes: a new object, the fields winning, the base untouched', () => {
    const base = { id: 'msg_1', text: 'hi', meta: { a: 1 }, at: 'then' };
    const out = extend(base, { at: 'now', seq: 3 });
    expect(out).toEqual({ ...base, ...{ at: 'now', seq: 3 } });
    expect(Object.keys(out)).toEqual(['id', 'text', 'meta', 'at', 'seq']);
    expect(out).not.toBe(base);
    expect(base).toEqual({ id: 'msg_1', text: 'hi', meta: { a: 1 }, at: 'then' });
    // Shallow, as a spread is.
    expect(out.meta).toBe(base.meta);
  });

  it('copies undefined values and own properties only, as a spread does', () => {
    const proto = { inherited: true };
    const base = Object.assign(Object.create(proto) as { inherited?: boolean }, { own: 1 });
    const out = extend(base, { gone: undefined });
    expect(out).toEqual({ own: 1, gone: undefined });
    expect('gone' in out).toBe(true);
    expect('inherited' in out).toBe(false);
  });
});
