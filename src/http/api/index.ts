/**
 * @module The `/v1` REST API. Order matters: the API key is checked first, so nothing is read or
 * parsed for an unauthenticated caller; then bodies must be JSON (415 otherwise) within
 * `BODY_LIMIT_BYTES` (413); then the routes. Errors go to the app's problem+json handler.
 */
import express, { type RequestHandler, Router } from 'express';
import { GatewayError } from '../../core/errors.js';
import type { GatewayDeps } from '../../deps.js';
import { webhooksRouter } from '../../webhooks/index.js';
import { apiKeyAuth } from '../auth.js';
import { chatbotRoutes } from './chatbot.js';
import { conversationRoutes } from './conversations.js';

/** A request carries a body when it declares a non-zero length or is chunked (RFC 9112 §6.3). */
function hasBody(req: express.Request): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/**
 * Refuses any body that is not `application/json` with 415. Without this, body-parser would skip such
 * a body and the route would see an empty one, turning a client mistake into a confusing 400.
 */
function requireJsonBody(): RequestHandler {
  return function requireJsonBodyMiddleware(req, _res, next) {
    if (hasBody(req) && !req.is('application/json')) {
      next(
        new GatewayError(
          'GW_ERR_UNSUPPORTED_MEDIA_TYPE',
          `Send the body as application/json (got ${req.get('content-type') ?? 'no content type'})`,
        ),
      );
      return;
    }
    next();
  };
}

/**
 * Builds the `/v1` router: API key auth, the JSON body parser, then the chatbot, conversation and
 * outbound-webhook routes.
 */
export function apiRouter(deps: GatewayDeps): Router {
  const router = Router();
  router.use(apiKeyAuth(deps.config.apiKeys));
  router.use(requireJsonBody());
  router.use(express.json({ limit: deps.config.BODY_LIMIT_BYTES, type: 'application/json', strict: true }));
  // Added to this router rather than mounted as routers of their own: every nested router is one more
  // dispatch (and its allocations) on every request.
  chatbotRoutes(deps, router);
  conversationRoutes(deps, router);
  router.use('/webhooks', webhooksRouter(deps));
  return router;
}
