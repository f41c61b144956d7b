/**
 * The TypeScript SDK's generated files (sdk/typescript/openapi.json, src/generated/*) are what
 * `npm run sdk:generate` makes from the gateway's routes today: a route added or changed without
 * regenerating fails here, and every operation of the document is callable by its `operationId`.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { generateSdk, staleSdkFiles } from '../../scripts/generate-sdk.js';
import { Switchboard, VERSION } from '../../sdk/typescript/src/client.js';
import { OPERATIONS as SDK_OPERATIONS } from '../../sdk/typescript/src/generated/operations.js';
import { OPERATIONS } from '../../src/http/api/openapi.js';

describe('TypeScript SDK generated files', () => {
  it('are current (run npm run sdk:generate after changing routes)', { timeout: 30_000 }, async () => {
    expect(await staleSdkFiles()).toEqual([]);
  });

  it('list every operation of the document by operationId, method and path', () => {
    const expected = Object.fromEntries(
      OPERATIONS.map((op) => [op.id, `${op.method.toUpperCase()} ${op.path.replace(/:(\w+)/g, '{$1}')}`]),
    );
    const actual = Object.fromEntries(
      Object.entries(SDK_OPERATIONS).map(([id, op]) => [id, `${op.method} ${op.path}`]),
    );
    expect(actual).toEqual(expected);
    // Lists that take a cursor are the paginated ones.
    for (const op of OPERATIONS) {
      const paginated = Boolean(op.query && 'cursor' in op.query.shape);
      expect(SDK_OPERATIONS[op.id as keyof typeof SDK_OPERATIONS].paginated, op.id).toBe(paginated);
    }
  });

  it('makes every operation a method of client.api, with no hand-written code', () => {
    const { api } = new Switchboard({ baseUrl: 'http://gw.test', apiKey: 'k' });
    expect(Object.keys(api).sort()).toEqual(OPERATIONS.map((op) => op.id).sort());
    for (const fn of Object.values(api)) expect(typeof fn).toBe('function');
  });

  it('the package version is the one the client sends', () => {
    const pkg = JSON.parse(
      readFileSync(new URL('../../sdk/typescript/package.json', import.meta.url), 'utf8'),
    );
    expect(pkg.version).toBe(VERSION);
  });

  it('is deterministic', { timeout: 30_000 }, async () => {
    expect(await generateSdk()).toEqual(await generateSdk());
  });
});
