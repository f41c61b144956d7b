/**
 * @module Builds the HTTP application without listening (tests inject dependencies).
 *
 * Order matters: request ids first; provider webhook routes next, before any body parser, so each
 * adapter verifies the raw bytes; then the `/v1` API with its JSON parser; then 404 and the one error
 * handler, which renders every error as `application/problem+json`.
 *
 * A `ROLE=worker` process takes no traffic: its app answers `/healthz`, `/readyz` and `/metrics`, and
 * 404 to everything else (docs/running.md#roles).
 */
import express, { type Express, type Request, type Response } from 'express';
import { type ConsoleOptions, consoleRouter } from './console/routes.js';
import type { GatewayDeps } from './deps.js';
import { apiRouter } from './http/api/index.js';
import { directRoutes } from './http/direct-routes.js';
import { docsRoutes, openApiDocument } from './http/docs.js';
import { errorHandler, notFound } from './http/errors.js';
import { pageRoutes } from './http/pages.js';
import { defineRequestLogger, requestId } from './http/request-id.js';
import { metricsAccess, metricsGuard, requestMetrics } from './metrics.js';
import { webhookSpans } from './tracing/http.js';
import { tracingOn } from './tracing/index.js';

/** What the start-up log and `/readyz` say on the embedded backend. */
export const EMBEDDED_WARNING =
  'embedded backend: in-process, single instance, data kept in memory and lost on restart; set REDIS_URL for production';

/** What `app.use('/webhooks', …)` matches: the prefix, case-insensitive, then a `/`, a query or the end. */
const WEBHOOK_PATH = /^\/webhooks(?:[/?]|$)/i;

/** Express's own entry point: `app(req, res)` calls it; a mounted app passes a callback. */
interface Handle {
  handle(req: Request, res: Response, callback?: (err?: unknown) => void): void;
}

/** What `app.handle` and its router set up on a request before the first layer runs. */
function enterExpress(app: Express, req: Request, res: Response): void {
  req.res = res;
  res.req = req;
  Object.setPrototypeOf(req, app.request);
  Object.setPrototypeOf(res, app.response);
  if (!res.locals) res.locals = Object.create(null);
  req.originalUrl = req.url;
  req.baseUrl = '';
  req.params = {};
}

export interface AppOptions {
  /** False (`ROLE=worker`): health and metrics only. @default true */
  traffic?: boolean;
}

export function createApp(
  deps: GatewayDeps,
  consoleOptions: ConsoleOptions = {},
  { traffic = true }: AppOptions = {},
): Express & { closeConsole(): void } {
  const app = express();
  app.disable('x-powered-by');
  // No ETags: responses are API results that clients do not revalidate, and hashing every body costs.
  app.set('etag', false);
  app.set('trust proxy', false);
  defineRequestLogger(app.request, deps.logger);
  const ids = requestId(deps.logger);
  const problems = errorHandler(deps.logger);
  app.use(ids);
  // Provider webhooks: the adapters' routes, plus any others they add (webchat's page, attachments).
  const webhooks = express.Router();
  // Each provider's own POST endpoint is also found by its exact path (src/http/direct-routes.ts).
  const direct = directRoutes(webhooks);
  if (traffic) {
    for (const adapter of deps.adapters) adapter.routes?.(webhooks);
    // Webhook paths go straight to the adapters, past every layer below: Express tries each layer in
    // turn, and the dozen in front of them (API, docs, console, health, metrics) cost a webhook more
    // than its own routing. The test is the one `app.use('/webhooks')` makes (case-insensitive).
    // Counted for every provider, whatever the adapter answers (refusals included).
    const channels = new Set(deps.adapters.map((a) => a.name));
    const counted = requestMetrics(deps.metrics, 'webhook', channels);
    // SPEC §12: a `webhook <channel>` span around each provider webhook, only while tracing is on. It
    // reads the path below /webhooks, hence a router mounted there; without tracing the adapters' routes
    // are entered directly, which saves a router's path rewriting per request.
    let routes: express.RequestHandler = webhooks;
    const tracing = tracingOn();
    if (tracing) {
      const traced = express.Router();
      traced.use('/webhooks', webhookSpans(channels));
      traced.use(webhooks);
      routes = traced;
    }
    // A provider's endpoint is found before the app's own router is entered: its dispatch (state,
    // closures and a path match per layer) costs a webhook more than its own routing did. What the
    // router would have done for it is done here: Express's request setup, the request id, the count,
    // and a rejection rendered by the error handler (direct routes never pass a request on).
    if (!tracing) {
      const routerHandle = (app as unknown as Handle).handle;
      (app as unknown as Handle).handle = function handle(req, res, callback) {
        const handler = callback === undefined && WEBHOOK_PATH.test(req.url) ? direct.find(req) : undefined;
        if (!handler) {
          routerHandle.call(this, req, res, callback);
          return;
        }
        enterExpress(app, req, res);
        const failed = (err?: unknown) => problems(err, req, res, failed);
        try {
          ids(req, res, () => counted(req, res, () => direct.run(handler, req, res, failed)));
        } catch (err) {
          failed(err);
        }
      };
    }
    app.use(function webhookPaths(req, res, next) {
      if (!WEBHOOK_PATH.test(req.url)) {
        next();
        return;
      }
      // A provider's endpoint goes straight to its handler, past the router's own dispatch; the
      // router (and, with tracing, its spans) takes everything else.
      const handler = tracing ? undefined : direct.find(req);
      if (handler) counted(req, res, () => direct.run(handler, req, res, next));
      else counted(req, res, () => routes(req, res, next));
    });
  }
  let consoleRoutes: ReturnType<typeof consoleRouter> | null = null;
  if (traffic) {
    // The API first: it is where the traffic is, and no other route lives under /v1.
    // The API's own description needs no key, so it is answered before the /v1 gate.
    app.get('/v1/openapi.json', openApiDocument());
    app.use('/v1', requestMetrics(deps.metrics, 'api'), apiRouter(deps));
    docsRoutes(app);
    // The operator console (SPEC §11): its page, sessions and the page's own API behind them.
    consoleRoutes = consoleRouter(deps, consoleOptions);
    // Sign-ins are counted with the API's requests: a wrong key is a 401 like any other.
    app.use('/console/session', requestMetrics(deps.metrics, 'api'));
    app.use('/console', consoleRoutes);
  }

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (_req, res) => {
    const redis = await deps.store.ping().catch(() => false);
    const ready = redis && !deps.lifecycle.draining;
    if (!ready) res.setHeader('Retry-After', '1');
    res.status(ready ? 200 : 503).json({
      status: ready ? 'ready' : 'not ready',
      backend: deps.store.kind,
      store: redis ? 'ok' : 'unreachable',
      draining: deps.lifecycle.draining,
      ...(deps.store.kind === 'embedded' ? { warning: EMBEDDED_WARNING } : {}),
    });
  });
  const metricsAccessMode = metricsAccess(deps.config);
  if (metricsAccessMode === 'open') {
    deps.logger.info(
      '/metrics is open to anyone who can reach this port: set METRICS_TOKEN to require a token',
    );
  } else if (metricsAccessMode === 'closed') {
    deps.logger.warn('/metrics answers 401: NODE_ENV is production and METRICS_TOKEN is not set');
  }
  app.get('/metrics', metricsGuard(deps.config), async (_req, res) => {
    res.set('content-type', deps.metrics.registry.contentType);
    res.send(await deps.metrics.registry.metrics());
  });

  if (traffic) {
    // The adapters' routes outside /webhooks (a webhook path no route took passes through again).
    app.use(webhooks);
    app.use(pageRoutes(deps));
  }
  app.use(notFound());
  app.use(problems);
  return Object.assign(app, { closeConsole: () => consoleRoutes?.close() });
}
