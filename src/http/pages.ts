/** @module The pages served at the site root. `GET /` is a placeholder until the web-chat demo page lands. */
import { type Router as ExpressRouter, Router } from 'express';
import type { GatewayDeps } from '../deps.js';

const HOME = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Switchboard</title></head>
<body>
<h1>Switchboard</h1>
<p>The gateway is running. The REST API is under <code>/v1</code>; health is at <code>/healthz</code>.</p>
</body>
</html>
`;

/** Mounts `GET /`. */
export function pageRoutes(_deps: GatewayDeps): ExpressRouter {
  const router = Router();
  router.get('/', (_req, res) => {
    res.type('html').send(HOME);
  });
  return router;
}
