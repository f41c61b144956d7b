/**
 * The HTTP server in front of the app, on a real gateway: `Expect: 100-continue` is answered only
 * when the body will be read (README: the key is checked before the body is read).
 */
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_KEY } from '../helpers/api-app.js';
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

  it('stays healthy afterwards', async () => {
    expect((await fetch(`${gw.url}/healthz`)).status).toBe(200);
    expect((await gw.api('/v1/conversations')).status).toBe(200);
  });
});
