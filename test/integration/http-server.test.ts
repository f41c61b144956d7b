/**
 * The HTTP server in front of the app, on a real gateway: `Expect: 100-continue` is answered only
 * when the body will be read (README: the key is checked before the body is read), and `/metrics`
 * takes `METRICS_TOKEN` and fails closed in production.
 */
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_KEY, type ApiApp, startApiApp } from '../helpers/api-app.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';

interface ContinueOutcome {
  continued: boolean;
  status: number;
  connection: string | undefined;
  body: string;
}

/**
 * Posts like curl does for a large upload: headers with `Expect: 100-continue`, the body only after
 * `100 Continue`. A final answer instead of 100 ends the exchange without sending the body.
 */
function upload(url: string, headers: Record<string, string>, body: string, declared?: number) {
  return new Promise<ContinueOutcome>((resolve, reject) => {
    let continued = false;
    const req = request(`${url}/v1/conversations`, {
      method: 'POST',
      headers: {
        expect: '100-continue',
        'content-type': 'application/json',
        'content-length': String(declared ?? Buffer.byteLength(body)),
        ...headers,
      },
    });
    req.on('continue', () => {
      continued = true;
      req.end(body);
    });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        resolve({
          continued,
          status: res.statusCode ?? 0,
          connection: res.headers.connection,
          body: Buffer.concat(chunks).toString('utf8'),
        });
        req.destroy();
      });
    });
    req.on('error', (err) => {
      if (!continued && (err as NodeJS.ErrnoException).code === 'ECONNRESET') return;
      reject(err);
    });
    req.flushHeaders();
  });
}

describe('Expect: 100-continue', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway({ BODY_LIMIT_BYTES: '65536' });
  });
  afterAll(async () => {
    await gw?.stop();
  });

  it('answers 401 without 100 Continue when the key is missing or wrong, and closes', async () => {
    for (const headers of [{}, { authorization: 'Bearer wrong-key-0123456789abcdef' }] as Array<
      Record<string, string>
    >) {
      const out = await upload(gw.url, headers, '', 10 * 1024 * 1024);
      expect(out.continued).toBe(false);
      expect(out.status).toBe(401);
      expect(out.connection).toBe('close');
      expect(JSON.parse(out.body)).toMatchObject({ code: 'GW_ERR_UNAUTHORIZED' });
    }
  });

  it('answers 413 without 100 Continue when the declared length is over the limit', async () => {
    const out = await upload(gw.url, { authorization: `Bearer ${API_KEY}` }, '', 65537);
    expect(out.continued).toBe(false);
    expect(out.status).toBe(413);
    expect(JSON.parse(out.body)).toMatchObject({ code: 'GW_ERR_PAYLOAD_TOO_LARGE' });
  });

  it('sends 100 Continue and reads the body for an authenticated request within the limit', async () => {
    const out = await upload(gw.url, { authorization: `Bearer ${API_KEY}` }, '{"meta":{"via":"expect"}}');
    expect(out.continued).toBe(true);
    expect(out.status).toBe(201);
    expect(JSON.parse(out.body)).toMatchObject({ meta: { via: 'expect' } });
  });

  it('sends 100 Continue for a managed key it has to look up, and not once the key is revoked', async () => {
    const made = await gw.api('/v1/keys', {
      method: 'POST',
      json: { name: 'uploader', scopes: ['conversations:write'] },
    });
    const { id, key } = (await made.json()) as { id: string; key: string };
    const out = await upload(gw.url, { authorization: `Bearer ${key}` }, '{"meta":{"via":"managed"}}');
    expect(out.continued).toBe(true);
    expect(out.status).toBe(201);
    expect((await gw.api(`/v1/keys/${id}`, { method: 'DELETE' })).status).toBe(200);
    const refused = await upload(gw.url, { authorization: `Bearer ${key}` }, '', 10 * 1024 * 1024);
    expect(refused.continued).toBe(false);
    expect(refused.status).toBe(401);
  });

  it('answers broken percent-encoding in any path below 500, without an error-level log', async () => {
    for (const path of [
      '/%',
      '/%E0%A4%A',
      '/v1/conversations/%E0%A4%A',
      '/v1/webhooks/%Fe%u0041',
      '/webchat/%',
    ]) {
      const res = await fetch(`${gw.url}${path}`, { headers: { authorization: `Bearer ${API_KEY}` } });
      expect(res.status, path).toBeGreaterThanOrEqual(400);
      expect(res.status, path).toBeLessThan(500);
    }
    expect(gw.logs.lines.filter((l) => (l.level as number) >= 50)).toEqual([]);
  });

  it('stays healthy afterwards', async () => {
    expect((await fetch(`${gw.url}/healthz`)).status).toBe(200);
    expect((await gw.api('/v1/conversations')).status).toBe(200);
  });
});

describe('Expect: 100-continue while shutting down', () => {
  it('answers 503 without inviting the body, even with a valid key', async () => {
    const gw = await startGateway({ SHUTDOWN_DRAIN_MS: '3000' });
    const stopped = gw.stop();
    try {
      const out = await upload(gw.url, { authorization: `Bearer ${API_KEY}` }, '{"meta":{}}');
      expect(out.continued).toBe(false);
      expect(out.status).toBe(503);
      expect(out.connection).toBe('close');
    } finally {
      await stopped;
    }
  });
});

describe('/metrics access', () => {
  const TOKEN = 'metrics-token-0123456789abcdef';
  const apps: ApiApp[] = [];
  afterAll(async () => {
    for (const app of apps) await app.close();
  });
  async function app(env: Record<string, string>): Promise<ApiApp> {
    const started = await startApiApp(env);
    apps.push(started);
    return started;
  }

  it('is open without METRICS_TOKEN outside production, and says so at start', async () => {
    const open = await app({});
    const res = await fetch(`${open.url}/metrics`);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('switchboard_messages_accepted_total');
    expect(open.logs.text()).toContain('/metrics is open');
  });

  it('requires the bearer token when METRICS_TOKEN is set', async () => {
    const guarded = await app({ METRICS_TOKEN: TOKEN });
    for (const authorization of [
      undefined,
      'Bearer wrong-token-0123456789abcdef',
      `Basic ${TOKEN}`,
      API_KEY,
    ]) {
      const res = await fetch(`${guarded.url}/metrics`, {
        headers: authorization ? { authorization } : {},
      });
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer /);
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(await res.text()).not.toContain('switchboard_');
    }
    // The API key is not the metrics token.
    const withKey = await fetch(`${guarded.url}/metrics`, {
      headers: { authorization: `Bearer ${API_KEY}` },
    });
    expect(withKey.status).toBe(401);
    const ok = await fetch(`${guarded.url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(ok.status).toBe(200);
    expect(await ok.text()).toContain('switchboard_messages_accepted_total');
    expect(guarded.logs.text()).not.toContain(TOKEN);
  });

  it('fails closed in production without METRICS_TOKEN, and takes the token there', async () => {
    const closed = await app({ NODE_ENV: 'production' });
    const res = await fetch(`${closed.url}/metrics`);
    expect(res.status).toBe(401);
    expect(((await res.json()) as { detail: string }).detail).toMatch(/METRICS_TOKEN/);
    expect(closed.logs.lines.some((l) => l.level === 40 && /METRICS_TOKEN/.test(String(l.msg)))).toBe(true);
    const prod = await app({ NODE_ENV: 'production', METRICS_TOKEN: TOKEN });
    expect(
      (await fetch(`${prod.url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })).status,
    ).toBe(200);
  });
});
