/**
 * @module The `/v1` REST API. Order matters: the API key is checked first, then its scope, so nothing
 * is read or parsed for an unauthenticated or unentitled caller; then bodies must be JSON (415
 * otherwise) within `BODY_LIMIT_BYTES` (413); then the routes. Errors go to the app's problem+json
 * handler.
 */
import express, {
  type NextFunction,
  type Request,
  type RequestHandler,
  type Response,
  Router,
} from 'express';
import { botConfigRoutes } from '../../bot-config/index.js';
import { GatewayError } from '../../core/errors.js';
import type { GatewayDeps } from '../../deps.js';
import { handoffRoutes } from '../../handoff/index.js';
import { keyRoutes, type Principal, scopeFor } from '../../keys/index.js';
import { participantRoutes } from '../../participants/index.js';
import { webhooksRouter } from '../../webhooks/index.js';
import { insufficientScope, principalCheck } from '../auth.js';
import { refuseDeepJson } from '../json-depth.js';
import { apiLimits } from '../limits.js';
import { chatbotRoutes } from './chatbot.js';
import { contactRoutes } from './contacts.js';
import { conversationRoutes } from './conversations.js';
import { validationError } from './schemas.js';

/** A request carries a body when it declares a non-zero length or is chunked (RFC 9112 §6.3). */
function hasBody(req: Request): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/**
 * The refusal for a body that is not `application/json` (415). Without it, body-parser would skip
 * such a body and the route would see an empty one, turning a client mistake into a confusing 400.
 */
function notJson(req: Request): GatewayError | undefined {
  if (!hasBody(req) || req.is('application/json')) return undefined;
  return new GatewayError(
    'GW_ERR_UNSUPPORTED_MEDIA_TYPE',
    `Send the body as application/json (got ${req.get('content-type') ?? 'no content type'})`,
  );
}

/**
 * The refusal for a managed key without the scope of the route (src/keys/scopes.ts), or for a route
 * no scope covers (404: it is closed to managed keys). Keys in `API_KEYS` have every scope.
 */
function scopeRefusal(principal: Principal, req: Request, res: Response): GatewayError | undefined {
  if (principal.source === 'env') return undefined;
  const scope = scopeFor(req.method, req.baseUrl + req.path);
  if (scope === undefined) {
    return new GatewayError('GW_ERR_ROUTE_NOT_FOUND', `No route for ${req.method} ${req.baseUrl}${req.path}`);
  }
  return principal.scopes.has(scope) ? undefined : insufficientScope(res, scope);
}

/**
 * What every `/v1` request passes before its route, in order: the API key and its scope (so nothing
 * is read or parsed for an unauthenticated caller), a JSON body (415 otherwise), then the JSON parser within
 * `BODY_LIMIT_BYTES` (413) and nesting depth (400). Any JSON text parses (`null` and `5` are valid
 * JSON), and a body that is not an object or array is then refused as a validation error: routes read
 * an absent body as `{}`, which a `null` must never become. One middleware rather than three: every router layer is one more match
 * and dispatch, with their allocations, on every request.
 */
function apiGate(deps: GatewayDeps): RequestHandler {
  const checkKey = principalCheck(deps.keys);
  const parseJson = express.json({
    limit: deps.config.BODY_LIMIT_BYTES,
    type: 'application/json',
    strict: false,
    verify: refuseDeepJson,
  });
  const admitted = (verdict: Principal | GatewayError, req: Request, res: Response, next: NextFunction) => {
    if (verdict instanceof GatewayError) {
      next(verdict);
      return;
    }
    res.locals.principal = verdict;
    const refused = scopeRefusal(verdict, req, res) ?? notJson(req);
    if (refused) {
      next(refused);
      return;
    }
    parseJson(req, res, (err?: unknown) => {
      if (
        err === undefined &&
        req.body !== undefined &&
        (typeof req.body !== 'object' || req.body === null)
      ) {
        next(validationError([{ field: '(body)', message: 'must be an object' }]));
        return;
      }
      next(err);
    });
  };
  return function apiGateMiddleware(req, res, next) {
    const verdict = checkKey(req, res);
    if (verdict instanceof Promise) verdict.then((v) => admitted(v, req, res, next), next);
    else admitted(verdict, req, res, next);
  };
}

/**
 * Builds the `/v1` router: API key auth, the JSON body parser, then the chatbot, conversation and
 * outbound-webhook routes.
 */
export function apiRouter(deps: GatewayDeps): Router {
  const router = Router();
  router.use(apiGate(deps));
  router.use(apiLimits(deps));
  // Added to this router rather than mounted as routers of their own: every nested router is one more
  // dispatch (and its allocations) on every request.
  chatbotRoutes(deps, router);
  conversationRoutes(deps, router);
  handoffRoutes(deps, router);
  participantRoutes(deps, router);
  contactRoutes(deps, router);
  keyRoutes(deps, router);
  botConfigRoutes(deps, router);
  router.use('/webhooks', webhooksRouter(deps));
  return router;
}
