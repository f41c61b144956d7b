/**
 * The `/v1/webhooks` API on a real gateway: subscriptions (secret shown once), validation as
 * problem+json, the SSRF refusals with WEBHOOKS_ALLOW_PRIVATE off (loopback, `localhost`, metadata,
 * private, IPv4-mapped IPv6) and, with a rebinding resolver, the check at delivery time and the
 * connection pinned to the vetted address.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Resolver, systemResolver } from '../../src/webhooks/ssrf.js';
import { eventually } from '../helpers/eventually.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { WebhookReceiver } from '../helpers/webhook-receiver.js';

type Json = Record<string, unknown>;

async function json(res: Response): Promise<Json> {
  return (await res.json()) as Json;
}

describe('with WEBHOOKS_ALLOW_PRIVATE off', () => {
  let gw: TestGateway;
  /** A resolver that can be re-pointed between creation and delivery (DNS rebinding). */
  const dns: Record<string, string> = { 'crm.example': '93.184.216.34' };
  const resolve: Resolver = async (host) => {
    if (host === 'localhost') return systemResolver(host);
    const address = dns[host];
    if (!address) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
    return [{ address, family: 4 }];
  };
  let receiver: WebhookReceiver;

  beforeAll(async () => {
    receiver = await WebhookReceiver.start();
    gw = await startGateway({}, { webhooks: { resolve, retryCeilingsMs: [60_000], timeoutMs: 2_000 } });
  });
  afterAll(async () => {
    await gw.stop();
    await receiver.close();
  });

  const create = (body: unknown) => gw.api('/v1/webhooks', { method: 'POST', json: body });

  it('creates a subscription and shows its secret only once', async () => {
    const res = await create({
      url: 'https://crm.example/hooks',
      events: ['message.created'],
      description: 'CRM',
    });
    expect(res.status).toBe(201);
    const body = await json(res);
    expect(body).toMatchObject({
      url: 'https://crm.example/hooks',
      events: ['message.created'],
      description: 'CRM',
      enabled: true,
      disabledReason: null,
    });
    expect(body.id).toMatch(/^wh_/);
    expect(body.secret).toMatch(/^whsec_[A-Za-z0-9+/=]{40,}$/);
    expect(res.headers.get('location')).toBe(`/v1/webhooks/${body.id}`);

    const got = await json(await gw.api(`/v1/webhooks/${body.id}`));
    expect(got).not.toHaveProperty('secret');
    expect(JSON.stringify(got)).not.toContain(String(body.secret).slice(6));
    const list = await json(await gw.api('/v1/webhooks'));
    expect(JSON.stringify(list)).not.toContain(String(body.secret).slice(6));
  });

  it('updates, disables, rotates and deletes', async () => {
    const { id, secret } = await json(
      await create({ url: 'https://crm.example/a', events: ['message.created'] }),
    );
    const patched = await gw.api(`/v1/webhooks/${id}`, {
      method: 'PATCH',
      json: { events: ['message.created', 'session.ended'], description: 'renamed', enabled: false },
    });
    expect(patched.status).toBe(200);
    expect(await json(patched)).toMatchObject({
      events: ['message.created', 'session.ended'],
      description: 'renamed',
      enabled: false,
    });
    expect((await gw.api(`/v1/webhooks/${id}/test`, { method: 'POST' })).status).toBe(409);

    const rotated = await json(
      await gw.api(`/v1/webhooks/${id}`, { method: 'PATCH', json: { rotateSecret: true } }),
    );
    expect(rotated.secret).toMatch(/^whsec_/);
    expect(rotated.secret).not.toBe(secret);
    expect(Date.parse(String(rotated.previousSecretExpiresAt)) - Date.now()).toBeGreaterThan(23 * 3_600_000);

    const deleted = await gw.api(`/v1/webhooks/${id}`, { method: 'DELETE' });
    expect(await json(deleted)).toEqual({ id });
    expect((await gw.api(`/v1/webhooks/${id}`)).status).toBe(404);
    expect((await gw.api(`/v1/webhooks/${id}`, { method: 'DELETE' })).status).toBe(404);
  });

  it('lists page by page', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      ids.push(
        String(
          (await json(await create({ url: `https://crm.example/p${i}`, events: ['message.created'] }))).id,
        ),
      );
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page = (await json(await gw.api(`/v1/webhooks?take=2${cursor ? `&cursor=${cursor}` : ''}`))) as {
        items: Array<{ id: string }>;
        cursor: string | null;
      };
      expect(page.items.length).toBeLessThanOrEqual(2);
      seen.push(...page.items.map((i) => i.id));
      cursor = page.cursor;
    } while (cursor);
    for (const id of ids) expect(seen).toContain(id);
    expect(new Set(seen).size).toBe(seen.length);
    expect((await gw.api('/v1/webhooks?cursor=garbage')).status).toBe(400);
    expect((await gw.api('/v1/webhooks?take=0')).status).toBe(400);
  });

  it.each([
    [{ url: 'not a url', events: ['message.created'] }, 'url'],
    [{ url: 'ftp://crm.example/x', events: ['message.created'] }, 'url'],
    [{ url: 'https://user:pw@crm.example/x', events: ['message.created'] }, 'url'],
    [{ url: 'https://crm.example/x', events: ['message.exploded'] }, 'events.0'],
    [{ url: 'https://crm.example/x', events: [] }, 'events'],
    [{ url: 'https://crm.example/x', events: ['message.created', 'message.created'] }, 'events'],
    [{ url: 'https://crm.example/x' }, 'events'],
    [{ url: 'https://crm.example/x', events: ['message.created'], secret: 'mine' }, 'secret'],
  ])('refuses %j with a 400 naming %s', async (body, field) => {
    const res = await create(body);
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toContain('application/problem+json');
    const problem = await json(res);
    expect(problem.code).toBe('GW_ERR_VALIDATION');
    expect((problem.errors as Array<{ field: string }>).map((e) => e.field)).toContain(field);
  });

  it.each([
    ['http://127.0.0.1:8080/hook', 'loopback'],
    ['http://localhost:8080/hook', 'loopback'],
    ['http://[::1]/hook', 'loopback'],
    ['http://[::ffff:127.0.0.1]/hook', 'loopback'],
    ['http://169.254.169.254/latest/meta-data/', 'metadata'],
    ['http://10.0.0.8/hook', 'private'],
    ['http://192.168.1.20/hook', 'private'],
    ['http://100.64.1.1/hook', 'shared'],
    ['http://0.0.0.0:3000/', 'unspecified'],
  ])('refuses the target %s (%s) with a 400 problem', async (url, reason) => {
    const res = await create({ url, events: ['message.created'] });
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toContain('application/problem+json');
    expect(await json(res)).toMatchObject({ code: 'GW_ERR_WEBHOOK_TARGET_REFUSED', reason });
  });

  it('refuses a private target on update too, and an unresolvable host', async () => {
    const { id } = await json(await create({ url: 'https://crm.example/u', events: ['message.created'] }));
    const res = await gw.api(`/v1/webhooks/${id}`, { method: 'PATCH', json: { url: 'http://127.0.0.1/x' } });
    expect(res.status).toBe(400);
    expect((await json(res)).code).toBe('GW_ERR_WEBHOOK_TARGET_REFUSED');
    expect((await json(await gw.api(`/v1/webhooks/${id}`))).url).toBe('https://crm.example/u');
    const unresolvable = await create({ url: 'https://nowhere.example/', events: ['message.created'] });
    expect(await json(unresolvable)).toMatchObject({
      code: 'GW_ERR_WEBHOOK_TARGET_REFUSED',
      reason: 'unresolvable',
    });
  });

  it('checks the address again at delivery time (DNS rebinding) and sends nothing to a private one', async () => {
    dns['rebind.example'] = '93.184.216.34';
    const { id } = await json(
      await create({ url: `http://rebind.example:${receiver.port}/hook`, events: ['message.created'] }),
    );
    // The name now points at the receiver on loopback.
    dns['rebind.example'] = '127.0.0.1';
    expect((await gw.api(`/v1/webhooks/${id}/test`, { method: 'POST' })).status).toBe(202);
    const delivery = await eventually(async () => {
      const page = (await json(await gw.api(`/v1/webhooks/${id}/deliveries`))) as { items: Json[] };
      return page.items.find((d) => d.attempts === 1);
    });
    expect(delivery).toMatchObject({ eventType: 'ping', status: 'retrying', responseStatus: null });
    expect(String(delivery.lastError)).toContain('rebind.example (127.0.0.1) is a loopback address');
    expect(receiver.received).toHaveLength(0);
  });

  it('asks for the API key', async () => {
    const res = await fetch(`${gw.url}/v1/webhooks`);
    expect(res.status).toBe(401);
  });

  it('answers 404 for unknown subscriptions and deliveries', async () => {
    expect((await gw.api('/v1/webhooks/wh_01ARZ3NDEKTSV4RRFFQ69G5FAV')).status).toBe(404);
    expect((await gw.api('/v1/webhooks/nope')).status).toBe(404);
    const { id } = await json(await create({ url: 'https://crm.example/n', events: ['message.created'] }));
    expect((await gw.api(`/v1/webhooks/${id}/deliveries/dlv_01ARZ3NDEKTSV4RRFFQ69G5FAV`)).status).toBe(404);
    expect(
      (
        await gw.api(`/v1/webhooks/${id}/deliveries/dlv_01ARZ3NDEKTSV4RRFFQ69G5FAV/replay`, {
          method: 'POST',
        })
      ).status,
    ).toBe(404);
    expect((await gw.api(`/v1/webhooks/${id}/replay`, { method: 'POST' })).status).toBe(400);
  });
});

describe('with WEBHOOKS_ALLOW_PRIVATE on', () => {
  let gw: TestGateway;
  let receiver: WebhookReceiver;
  beforeAll(async () => {
    receiver = await WebhookReceiver.start();
    // A name only this resolver knows: reaching the receiver proves the connection used the vetted address.
    const resolve: Resolver = async (host) => {
      if (host !== 'crm.internal.test') throw new Error('ENOTFOUND');
      return [{ address: '127.0.0.1', family: 4 }];
    };
    gw = await startGateway({ WEBHOOKS_ALLOW_PRIVATE: 'true' }, { webhooks: { resolve } });
  });
  afterAll(async () => {
    await gw.stop();
    await receiver.close();
  });

  it('still refuses the metadata address', async () => {
    const res = await gw.api('/v1/webhooks', {
      method: 'POST',
      json: { url: 'http://169.254.169.254/', events: ['message.created'] },
    });
    expect(await json(res)).toMatchObject({ code: 'GW_ERR_WEBHOOK_TARGET_REFUSED', reason: 'metadata' });
  });

  it('connects to the address it vetted, with the URL host in the Host header', async () => {
    const created = await json(
      await gw.api('/v1/webhooks', {
        method: 'POST',
        json: { url: `http://crm.internal.test:${receiver.port}/in`, events: ['message.created'] },
      }),
    );
    receiver.secrets = [String(created.secret)];
    expect((await gw.api(`/v1/webhooks/${created.id}/test`, { method: 'POST' })).status).toBe(202);
    const [ping] = await receiver.waitFor((r) => r.length === 1);
    expect(ping!.event).toMatchObject({
      type: 'ping',
      version: 1,
      conversationId: null,
      data: { webhookId: created.id },
    });
    expect(ping!.verifiedWith).toEqual([0]);
    expect(ping!.host).toBe(`crm.internal.test:${receiver.port}`);
  });
});
