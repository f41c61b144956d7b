/**
 * @module The API reference (SPEC §10): `GET /v1/openapi.json`, the OpenAPI document (no API key
 * needed), and `GET /docs`, a page that renders it with Swagger UI. Swagger UI is served from its
 * package in node_modules, never a CDN, so the page works offline; a Content-Security-Policy lets it
 * load and fetch nothing but this origin.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { RequestHandler, Router } from 'express';
import { buildOpenApiDocument } from './api/openapi.js';

/** The document's `info.version`: the version of the `/v1` API it describes. */
export const API_VERSION = '1.0.0';

const SWAGGER_DIR = dirname(createRequire(import.meta.url).resolve('swagger-ui-dist/package.json'));

/** The package's files the page loads, under `/docs/assets/`; nothing else of the package is served. */
const ASSETS: Readonly<Record<string, string>> = {
  'swagger-ui.css': 'swagger-ui.css',
  'swagger-ui-bundle.js': 'swagger-ui-bundle.js',
  'favicon-32x32.png': 'favicon-32x32.png',
};

/**
 * No inline script or style and no other origin: scripts, styles and fetches come from here only.
 * `data:` images are the icons Swagger UI's stylesheet embeds.
 */
export const DOCS_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Switchboard API reference</title>
<link rel="icon" type="image/png" href="/docs/assets/favicon-32x32.png">
<link rel="stylesheet" href="/docs/assets/swagger-ui.css">
</head>
<body>
<div id="reference"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script>
</body>
</html>
`;

// A file of its own rather than an inline script, so the policy needs no 'unsafe-inline' or hash.
// `validatorUrl: null`: Swagger UI would otherwise send the document to validator.swagger.io.
const INIT = `window.ui = SwaggerUIBundle({
  url: '/v1/openapi.json',
  dom_id: '#reference',
  deepLinking: true,
  validatorUrl: null,
  tryItOutEnabled: false,
});
`;

const pageHeaders: RequestHandler = (_req, res, next) => {
  res.setHeader('Content-Security-Policy', DOCS_CSP);
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Referrer-Policy', 'no-referrer');
  next();
};

/** `GET /v1/openapi.json`. Built once: the routes and their schemas do not change while the process runs. */
export function openApiDocument(): RequestHandler {
  const document = JSON.stringify(buildOpenApiDocument(API_VERSION));
  return function openApiJson(_req, res) {
    res.setHeader('Cache-Control', 'no-cache');
    res.type('application/json').send(document);
  };
}

/** Adds `GET /docs` and the page's assets to `router`. */
export function docsRoutes(router: Pick<Router, 'get'>): void {
  router.get('/docs', pageHeaders, (_req, res) => {
    res.setHeader('Cache-Control', 'no-cache');
    res.type('html').send(PAGE);
  });
  router.get('/docs/init.js', pageHeaders, (_req, res) => {
    res.setHeader('Cache-Control', 'no-cache');
    res.type('text/javascript').send(INIT);
  });
  router.get('/docs/assets/:name', pageHeaders, (req, res, next) => {
    const name = String(req.params.name);
    const file = Object.hasOwn(ASSETS, name) ? ASSETS[name] : undefined;
    if (file === undefined) {
      next();
      return;
    }
    res.sendFile(join(SWAGGER_DIR, file), { maxAge: '1h' }, (err) => {
      if (err) next(err);
    });
  });
}
