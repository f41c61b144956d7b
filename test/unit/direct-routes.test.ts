import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type NextFunction, type Request, type Response } from 'express';
import { afterEach, describe, expect, it } from 'vitest';
import { directRoutes } from '../../src/http/direct-routes.js';

/**
 * An app shaped like the gateway's: the webhook router's POST routes are looked up in the map first,
 * the router takes the rest. Responses say who answered, so a test tells the map from the router.
 */
async function serve(register: (router: express.Router) => void) {
  const router = express.Router();
  const direct = directRoutes(router);
  register(router);
  const app = express();
  app.use((req, res, next) => {
    const handler = direct.find(req);
    if (handler) {
      res.set('x-via', 'map');
      direct.run(handler, req, res, next);
    } else {
      res.set('x-via', 'router');
      router(req, res, next);
    }
  });
  app.use((_req, res) => {
    res.status(404).send('none');
  });
  app.use((err: Error, _req: Request, res: Response, _next: NextFunction) => {
    res.status(500).send(`error: ${err.message}`);
  });
  const server: Server = await new Promise((resolve) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
  });
  servers.push(server);
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return async (path: string, method = 'POST') => {
    const res = await fetch(`${base}${path}`, { method });
    return { status: res.status, via: res.headers.get('x-via'), body: await res.text() };
  };
}

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
});

const ok = (name: string) => (_req: Request, res: Response) => {
  res.send(name);
};

describe('direct webhook routes', () => {
  it('serves a literal POST route from the map as the router would match it', async () => {
    const call = await serve((r) => r.post('/webhooks/p/events', ok('events')));
    for (const path of [
      '/webhooks/p/events',
      '/Webhooks/P/Events',
      '/webhooks/p/events/',
      '/webhooks/p/events?x=1',
    ]) {
      expect(await call(path)).toEqual({ status: 200, via: 'map', body: 'events' });
    }
    // Not the route: the router answers, and finds nothing either.
    for (const path of ['/webhooks/p/event', '/webhooks/p/events//', '/webhooks/p/%65vents']) {
      expect(await call(path)).toMatchObject({ status: 404, via: 'router' });
    }
    // Other methods are the router's.
    expect(await call('/webhooks/p/events', 'GET')).toMatchObject({ status: 404, via: 'router' });
  });

  it('leaves to the router routes with middleware, parameters, or a handler that takes next', async () => {
    // Each on a router of its own, so that no route is left out only for coming after another.
    const call = async (path: string) => {
      const route = path.split('/')[2];
      return (
        await serve((r) => {
          if (route === 'mw') r.post('/webhooks/mw', (_req, _res, next) => next(), ok('mw'));
          if (route === 'a' || route === ':id')
            r.post('/webhooks/:id/x', (req: Request, res: Response) => {
              res.send(`param:${req.params.id}`);
            });
          if (route === 'next')
            r.post('/webhooks/next', (_req: Request, res: Response, _next: NextFunction) => {
              res.send('next');
            });
        })
      )(path);
    };
    expect(await call('/webhooks/mw')).toEqual({ status: 200, via: 'router', body: 'mw' });
    expect(await call('/webhooks/a/x')).toEqual({ status: 200, via: 'router', body: 'param:a' });
    // Even a request for the pattern's own text: the router gives it its parameters.
    expect(await call('/webhooks/:id/x')).toEqual({ status: 200, via: 'router', body: 'param::id' });
    expect(await call('/webhooks/next')).toEqual({ status: 200, via: 'router', body: 'next' });
  });

  it('does not pass over a layer registered before the route that the router would run first', async () => {
    const call = await serve((r) => {
      r.use((_req, res, next) => {
        res.set('x-before', '1');
        next();
      });
      r.post('/webhooks/after-use', ok('after-use'));
    });
    expect(await call('/webhooks/after-use')).toEqual({ status: 200, via: 'router', body: 'after-use' });
    const first = await serve((r) => {
      r.post('/webhooks/twice', (_req, _res, next) => next(), ok('first'));
      r.post('/webhooks/twice', ok('second'));
      r.post('/webhooks/:any', ok('param'));
      r.post('/webhooks/behind-param', ok('behind-param'));
    });
    expect(await first('/webhooks/twice')).toEqual({ status: 200, via: 'router', body: 'first' });
    expect(await first('/webhooks/behind-param')).toEqual({ status: 200, via: 'router', body: 'param' });
  });

  it('hands a rejected handler promise to the error handler, as the router does', async () => {
    const call = await serve((r) =>
      r.post('/webhooks/fails', async () => {
        throw new Error('boom');
      }),
    );
    expect(await call('/webhooks/fails')).toEqual({ status: 500, via: 'map', body: 'error: boom' });
  });
});
