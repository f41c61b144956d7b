/**
 * A provider's POST endpoint is served before the app's router is entered (src/app.ts): the request
 * must come out exactly as one the router served, with Express's request and response methods, its
 * request id, its access line, its count in the webhook metrics, and a rejection rendered as
 * problem+json by the one error handler. The same adapter's route with middleware goes through the
 * router, for the comparison.
 */
import type { Request, Response, Router } from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GatewayError } from '../../src/core/errors.js';
import { type ApiApp, startApiApp } from '../helpers/api-app.js';

/** What a handler saw of its request: the fields a channel adapter reads. */
function seen(req: Request, res: Response) {
  return {
    method: req.method,
    path: req.path,
    originalUrl: req.originalUrl,
    baseUrl: req.baseUrl,
    params: req.params,
    query: req.query,
    header: req.get('x-probe') ?? null,
    id: req.id,
    logs: typeof req.log.info === 'function',
    locals: typeof res.locals === 'object',
  };
}

const probe = {
  name: 'probe',
  channels: ['api'] as const,
  routes(router: Router) {
    router.post('/webhooks/probe/in', (req, res) => {
      res.status(200).json(seen(req, res));
    });
    router.post('/webhooks/probe/refuse', async () => {
      throw new GatewayError('GW_ERR_SHUTTING_DOWN', 'The gateway is shutting down', { retryAfter: 2 });
    });
    router.post('/webhooks/probe/crash', () => {
      throw new Error('handler bug with a secret-free message');
    });
    // Middleware in front: not a route the map serves, so the router takes it.
    router.post(
      '/webhooks/probe/routed',
      (_req, _res, next) => next(),
      (req, res) => {
        res.status(200).json(seen(req, res));
      },
    );
  },
  describe: () => [],
};

describe('provider endpoints served past the app router', () => {
  let app: ApiApp;

  beforeAll(async () => {
    app = await startApiApp({}, { adapters: [probe] });
  });

  afterAll(async () => {
    await app?.close();
  });

  const post = (path: string, headers: Record<string, string> = {}) =>
    fetch(`${app.url}${path}`, { method: 'POST', headers, body: 'x' });

  it('gives the handler the request the router would have given it', async () => {
    const direct = await post('/webhooks/probe/in?a=1', { 'x-probe': 'yes' });
    const routed = await post('/webhooks/probe/routed?a=1', { 'x-probe': 'yes' });
    expect(direct.status).toBe(200);
    expect(routed.status).toBe(200);
    const a = (await direct.json()) as ReturnType<typeof seen>;
    const b = (await routed.json()) as ReturnType<typeof seen>;
    expect(a).toMatchObject({
      method: 'POST',
      path: '/webhooks/probe/in',
      originalUrl: '/webhooks/probe/in?a=1',
      baseUrl: b.baseUrl,
      params: b.params,
      query: { a: '1' },
      header: 'yes',
      logs: true,
      locals: true,
    });
    expect(a.id).toBe(direct.headers.get('x-request-id'));
    expect(a.id).toMatch(/^[0-9a-f-]{36}$/);
    // A caller's own safe id is kept, as on every other route.
    const own = await post('/webhooks/probe/in', { 'x-request-id': 'trace-abc.1' });
    expect(own.headers.get('x-request-id')).toBe('trace-abc.1');
  });

  it('matches as the router does: any case, a trailing slash, and nothing else', async () => {
    expect((await post('/Webhooks/Probe/In/')).status).toBe(200);
    expect((await post('/webhooks/probe/in/extra')).status).toBe(404);
    const get = await fetch(`${app.url}/webhooks/probe/in`);
    expect(get.status).toBe(404);
    expect(get.headers.get('content-type')).toContain('application/problem+json');
  });

  it('renders a rejected or throwing handler as problem+json with the request id, logged once', async () => {
    const refused = await post('/webhooks/probe/refuse');
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBe('2');
    expect(refused.headers.get('content-type')).toContain('application/problem+json');
    const problem = (await refused.json()) as { code: string; requestId: string };
    expect(problem.code).toBe('GW_ERR_SHUTTING_DOWN');
    expect(problem.requestId).toBe(refused.headers.get('x-request-id'));

    const crashed = await post('/webhooks/probe/crash');
    expect(crashed.status).toBe(500);
    const internal = (await crashed.json()) as { code: string; requestId: string };
    expect(internal.code).toBe('GW_ERR_INTERNAL');
    const failures = app.logs.lines.filter(
      (l) => l.msg === 'request failed' && l.reqId === internal.requestId,
    );
    expect(failures).toHaveLength(1);
  });

  it('writes the access line and counts the request as a webhook of its channel', async () => {
    const res = await post('/webhooks/probe/in');
    const id = res.headers.get('x-request-id');
    await res.text();
    const lines = app.logs.lines.filter((l) => l.msg === 'request' && l.reqId === id);
    expect(lines).toEqual([
      expect.objectContaining({ method: 'POST', path: '/webhooks/probe/in', status: 200 }),
    ]);
    const metrics = await app.deps.metrics.registry.getSingleMetricAsString(
      'switchboard_webhook_requests_total',
    );
    expect(metrics).toMatch(/switchboard_webhook_requests_total\{channel="probe",status="2xx"\} [1-9]/);
    expect(metrics).toMatch(/switchboard_webhook_requests_total\{channel="probe",status="5xx"\} [1-9]/);
  });
});
