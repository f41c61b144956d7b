/**
 * @module Provider webhooks dispatched by exact path, past their router.
 *
 * A provider webhook is one literal path with one handler (`router.post('/webhooks/slack/events', h)`),
 * yet a router entered for it makes its own dispatch state, tries its layers in turn and wraps the
 * matched route in another dispatch: per request more allocation than the handler's own parsing. So
 * the POST routes registered on the webhook router are also kept in a map, and a request for one of
 * them is handed to its handler directly. The router keeps every route too and answers everything else
 * (other methods, parameters, routes with middleware, handlers that may pass a request on).
 */
import type { NextFunction, Request, RequestHandler, Response, Router } from 'express';

/** A route only the map serves: literal path (no parameters, wildcards or patterns), one handler. */
const LITERAL = /^\/[A-Za-z0-9._~/-]*$/;

export interface DirectRoutes {
  /** The handler of a POST to exactly this route, when there is one; else undefined. */
  find(req: Request): RequestHandler | undefined;
  /** Runs `handler` as the router would: a returned promise's rejection goes to `next`. */
  run(handler: RequestHandler, req: Request, res: Response, next: NextFunction): void;
}

/**
 * Records the POST routes registered on `router` from now on that the map can serve exactly as the
 * router would: a literal path and one handler that does not take `next` (so it never passes the
 * request on, which would reach the router's later layers the map skips). Matching follows the
 * router's defaults: case-insensitive, one optional trailing slash, query string ignored, no decoding.
 */
export function directRoutes(router: Router): DirectRoutes {
  const routes = new Map<string, RequestHandler>();
  const post = router.post.bind(router);
  router.post = ((path: unknown, ...handlers: RequestHandler[]) => {
    const [handler] = handlers;
    if (
      typeof path === 'string' &&
      LITERAL.test(path) &&
      handlers.length === 1 &&
      typeof handler === 'function' &&
      handler.length < 3 &&
      nothingBefore(router, path)
    ) {
      const key = normalise(path);
      // The first registration wins, as the router's first matching layer does.
      if (!routes.has(key)) routes.set(key, handler);
    }
    return post(path as string, ...handlers);
  }) as Router['post'];
  return {
    find(req) {
      if (routes.size === 0 || req.method !== 'POST') return undefined;
      const url = req.url;
      const q = url.indexOf('?');
      return routes.get(normalise(q === -1 ? url : url.slice(0, q)));
    },
    run(handler, req, res, next) {
      try {
        const result = handler(req, res, next) as unknown;
        if (result instanceof Promise) result.catch(next);
      } catch (err) {
        next(err);
      }
    },
  };
}

/**
 * Whether no layer already on `router` could take a POST to `path` first: every one is a route (no
 * middleware) with a literal path of its own, or one that does not answer POST.
 */
function nothingBefore(router: Router, path: string): boolean {
  const key = normalise(path);
  return (router.stack as unknown as Layer[]).every((layer) => {
    const route = layer.route;
    if (!route) return false;
    if (!route._handlesMethod('POST')) return true;
    return typeof route.path === 'string' && LITERAL.test(route.path) && normalise(route.path) !== key;
  });
}

interface Layer {
  route?: { path: unknown; _handlesMethod(method: string): boolean };
}

function normalise(path: string): string {
  const lower = path.toLowerCase();
  return lower.length > 1 && lower.endsWith('/') ? lower.slice(0, -1) : lower;
}
