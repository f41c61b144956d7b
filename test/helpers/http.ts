/** Small helpers for the loopback HTTP fakes. */
import type { IncomingMessage } from 'node:http';

/** Reads a request body as UTF-8. */
export function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** The API key every test gateway accepts. */
export const API_KEY = 'test-api-key-0123456789abcdef';

/** fetch against a gateway's API with the test key; `json` becomes the JSON body. */
export function apiFetch(
  base: string,
  path: string,
  init: RequestInit & { json?: unknown } = {},
): Promise<Response> {
  const { json, headers, ...rest } = init;
  return fetch(`${base}${path}`, {
    ...rest,
    headers: {
      authorization: `Bearer ${API_KEY}`,
      ...(json !== undefined ? { 'content-type': 'application/json' } : {}),
      ...(headers as Record<string, string> | undefined),
    },
    ...(json !== undefined ? { body: JSON.stringify(json) } : {}),
  });
}
