/**
 * The image and the compose file, read as text (there is no Docker engine in CI): Node 24 pinned by
 * digest in every stage, production mode, both ports exposed, and Redis with the append-only file.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const read = (name: string) => readFileSync(new URL(`../../${name}`, import.meta.url), 'utf8');

describe('Dockerfile', () => {
  const dockerfile = read('Dockerfile');

  it('builds and runs on Node 24 bookworm-slim, pinned by digest, in every stage', () => {
    const arg = /^ARG NODE_IMAGE=(\S+)$/m.exec(dockerfile)?.[1];
    expect(arg).toMatch(/^node:24(\.\d+){0,2}-bookworm-slim@sha256:[0-9a-f]{64}$/);
    const froms = [...dockerfile.matchAll(/^FROM (\S+)/gm)].map((m) => m[1]);
    expect(froms.length).toBeGreaterThanOrEqual(2);
    expect(froms.every((f) => /^\$\{NODE_IMAGE\}$/.test(f ?? ''))).toBe(true);
  });

  it('runs in production as a non-root user and exposes the HTTP and SMTP ports', () => {
    expect(dockerfile).toMatch(/^ENV NODE_ENV=production$/m);
    expect(dockerfile).toMatch(/^USER node$/m);
    expect(dockerfile).toMatch(/^EXPOSE 3000 2525$/m);
    expect(dockerfile).toContain('npm ci --omit=dev');
  });

  it('keeps the code on Node 20 too', () => {
    expect(JSON.parse(read('package.json')).engines.node).toBe('>=20.12');
  });
});

describe('compose.yaml', () => {
  const compose = read('compose.yaml');

  it('runs Redis with the append-only file and points the gateway at it', () => {
    expect(compose).toMatch(/redis-server", "--appendonly", "yes"/);
    expect(compose).toMatch(/REDIS_URL: redis:\/\/redis:6379/);
    expect(compose).toMatch(/condition: service_healthy/);
    expect(compose).toMatch(/"3000:3000"/);
  });
});
