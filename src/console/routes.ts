/**
 * @module The operator console's HTTP surface (SPEC §11, docs/console.md), mounted at `/console`:
 *
 * - `GET /console` and `/console/assets/*`: the page ({@link pageRoutes}).
 * - `POST /console/session` `{ key, name? }`: signs in with a key that has the `console` scope and
 *   sets the session cookie; `GET` answers who is signed in and the CSRF token; `DELETE` signs out.
 * - `/console/api/*`: the page's data behind the session cookie. Every write must carry the
 *   session's `X-CSRF-Token` and, when the browser names one, come from this origin (403 otherwise,
 *   with nothing changed). The `/v1` conversation, contact and webhook routes are mounted here for
 *   reading, with one write (replaying a failed delivery); the agent's own steps (take, hand back,
 *   reply) act as the signed-in agent; the operations view and the live stream are the console's own.
 *
 * A wrong key is a `401 GW_ERR_UNAUTHORIZED` like any other, through the same error handler; an
 * unknown or expired session is one too, which sends the page back to its sign-in.
 */
import express, { type Request, type RequestHandler, type Response, Router } from 'express';
import { z } from 'zod';
import { GatewayError } from '../core/errors.js';
import type { Conversation } from '../core/model.js';
import type { GatewayDeps } from '../deps.js';
import { resolveAgent } from '../handoff/participants.js';
import { contactRoutes } from '../http/api/contacts.js';
import { conversationRoutes } from '../http/api/conversations.js';
import { conversationOr404, notFound } from '../http/api/lookup.js';
import { parseInput, validationError } from '../http/api/schemas.js';
import { refuseDeepJson } from '../http/json-depth.js';
import { sendAsAgent } from '../participants/agents.js';
import { webhooksRouter } from '../webhooks/index.js';
import { apiKeysAuthenticate, CONSOLE_SCOPE, type ConsoleAuthenticate } from './auth.js';
import { ConsoleFeed } from './feed.js';
import { operations } from './operations.js';
import { pageHeaders, pageRoutes } from './page.js';
import { type ConsoleSession, ConsoleSessions, CSRF_HEADER, SESSION_COOKIE, sameToken } from './sessions.js';

export interface ConsoleOptions {
  /** Who may sign in; by default every key of `API_KEYS`. */
  authenticate?: ConsoleAuthenticate;
  /** Idle lifetime of a session in seconds (tests shorten it). */
  sessionIdleS?: number;
  /** Where the built page is (default: `console/dist` of this checkout). */
  buildDir?: string;
}

const signInSchema = z.strictObject({
  key: z.string().min(1).max(512).regex(/^\S+$/, 'must not contain whitespace'),
  /** The name the agent's messages carry; the key's name when absent. */
  name: z.string().trim().min(1).max(100).optional(),
});

const replySchema = z.strictObject({ text: z.string().trim().min(1).max(10_000) });

declare global {
  namespace Express {
    interface Request {
      /** The console session of a request under `/console/api`. */
      consoleSession?: ConsoleSession;
    }
  }
}

function cookieOf(req: Request, name: string): string | undefined {
  const header = req.headers.cookie;
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
/** The one `/v1` write the page makes through the console API. */
const REPLAY_PATH = /^\/webhooks\/[^/]+\/deliveries\/[^/]+\/replay$/;

/**
 * The refusal of a request a browser says comes from elsewhere: `Sec-Fetch-Site` other than
 * `same-origin`, or an `Origin` that is neither `PUBLIC_URL`'s nor this request's own host. Clients
 * that are not browsers send neither and are judged by the CSRF token alone.
 */
function crossSite(req: Request, publicOrigin: string | undefined): GatewayError | undefined {
  const site = req.get('sec-fetch-site');
  if (site !== undefined && site !== 'same-origin' && site !== 'none') {
    return new GatewayError('GW_ERR_CSRF_REFUSED', 'Console writes are accepted from the console page only');
  }
  const origin = req.get('origin');
  if (origin === undefined) return undefined;
  const host = req.get('host');
  const own = host === undefined ? [] : [`http://${host}`, `https://${host}`];
  if (origin === publicOrigin || own.includes(origin)) return undefined;
  return new GatewayError('GW_ERR_CSRF_REFUSED', `Console writes from ${origin} are refused`);
}

function signedOut(): GatewayError {
  return new GatewayError(
    'GW_ERR_UNAUTHORIZED',
    'Sign in to the console (the session is unknown or expired)',
  );
}

/** A request's JSON body: the same parser, limit and depth rule as `/v1`, and nothing but JSON. */
function jsonBody(deps: GatewayDeps): RequestHandler {
  const parse = express.json({
    limit: deps.config.BODY_LIMIT_BYTES,
    type: 'application/json',
    strict: false,
    verify: refuseDeepJson,
  });
  return function consoleJson(req, res, next) {
    const length = req.headers['content-length'];
    const hasBody =
      req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
    if (hasBody && !req.is('application/json')) {
      next(new GatewayError('GW_ERR_UNSUPPORTED_MEDIA_TYPE', 'Send the body as application/json'));
      return;
    }
    parse(req, res, (err?: unknown) => {
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
}

/** Builds the `/console` router; `close()` ends the live streams (shutdown). */
export function consoleRouter(deps: GatewayDeps, opts: ConsoleOptions = {}): Router & { close(): void } {
  const authenticate = opts.authenticate ?? apiKeysAuthenticate(deps.config.apiKeys);
  const sessions = new ConsoleSessions(deps.store.kv, { idleS: opts.sessionIdleS });
  const publicOrigin = deps.config.PUBLIC_URL ? new URL(deps.config.PUBLIC_URL).origin : undefined;
  const secure = deps.config.PUBLIC_URL?.startsWith('https:') === true;
  const cookieAttributes = `Path=/console; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}`;
  const feed = new ConsoleFeed({ bus: deps.store.bus, events: deps.events, logger: deps.logger });
  const streams = new Set<Stream>();
  const parseJson = jsonBody(deps);

  const router = Router() as Router & { close(): void };
  pageRoutes(router, opts.buildDir === undefined ? undefined : () => opts.buildDir);

  const noStore: RequestHandler = (_req, res, next) => {
    res.setHeader('Cache-Control', 'no-store');
    next();
  };
  const sameSite: RequestHandler = (req, _res, next) => {
    next(SAFE_METHODS.has(req.method) ? undefined : crossSite(req, publicOrigin));
  };

  const sessionView = (session: ConsoleSession) => ({
    agent: session.agent,
    keyName: session.keyName,
    scopes: session.scopes,
    csrfToken: session.csrf,
    createdAt: session.createdAt,
  });

  router.post('/session', pageHeaders, noStore, sameSite, parseJson, async (req, res) => {
    const body = parseInput(signInSchema, req.body ?? {});
    const key = await authenticate(body.key);
    if (!key) throw new GatewayError('GW_ERR_UNAUTHORIZED', 'The API key is not valid');
    if (!key.scopes.has(CONSOLE_SCOPE))
      throw new GatewayError('GW_ERR_INSUFFICIENT_SCOPE', 'This API key lacks the scope `console`', {
        scope: CONSOLE_SCOPE,
      });
    const { id, session } = await sessions.create(body.name ?? key.name, key);
    res.setHeader('Set-Cookie', `${SESSION_COOKIE}=${id}; ${cookieAttributes}`);
    res.status(201).json(sessionView(session));
  });

  const currentSession = async (req: Request): Promise<ConsoleSession | undefined> => {
    const id = cookieOf(req, SESSION_COOKIE);
    return id === undefined || id.length > 100 ? undefined : sessions.get(id);
  };

  router.get('/session', pageHeaders, noStore, async (req, res) => {
    const session = await currentSession(req);
    if (!session) throw signedOut();
    res.json(sessionView(session));
  });

  router.delete('/session', pageHeaders, noStore, sameSite, async (req, res) => {
    const id = cookieOf(req, SESSION_COOKIE);
    const session = id === undefined ? undefined : await sessions.get(id);
    // Signing out is a write: without the token a page elsewhere could sign the agent out.
    if (session) {
      const token = req.get(CSRF_HEADER);
      if (token === undefined || !sameToken(token, session.csrf))
        throw new GatewayError('GW_ERR_CSRF_REFUSED', `Send the session's CSRF token as ${CSRF_HEADER}`);
      await sessions.delete(id!);
    }
    res.setHeader('Set-Cookie', `${SESSION_COOKIE}=; ${cookieAttributes}; Max-Age=0`);
    res.status(204).end();
  });

  // --- the page's API ------------------------------------------------------------------------------
  const api = Router();
  api.use(noStore, async function consoleGate(req, _res, next) {
    try {
      const session = await currentSession(req);
      if (!session) throw signedOut();
      if (!SAFE_METHODS.has(req.method)) {
        const refused = crossSite(req, publicOrigin);
        if (refused) throw refused;
        const token = req.get(CSRF_HEADER);
        if (token === undefined || !sameToken(token, session.csrf))
          throw new GatewayError('GW_ERR_CSRF_REFUSED', `Send the session's CSRF token as ${CSRF_HEADER}`);
      }
      req.consoleSession = session;
      next();
    } catch (err) {
      next(err);
    }
  });
  api.use(parseJson);

  api.get('/stream', async (req, res) => {
    await openStream(req, res);
  });

  api.get('/operations', async (_req, res) => {
    res.json(await operations(deps));
  });

  /** The signed-in agent as a participant of the conversation (added on first use). */
  const agentIn = async (req: Request, conversation: Conversation) => {
    const found = await resolveAgent(deps.participants, conversation, { name: req.consoleSession!.agent });
    if (!found) throw notFound('Conversation', conversation.id);
    return found.participant;
  };

  api.post('/conversations/:id/take', async (req, res) => {
    const conversation = await conversationOr404(deps.store, req.params.id);
    const agent = await agentIn(req, conversation);
    const taken = await deps.handoff.assign(conversation.id, agent.id);
    if (!taken) throw notFound('Conversation', conversation.id);
    res.json(taken);
  });

  api.post('/conversations/:id/release', async (req, res) => {
    const conversation = await conversationOr404(deps.store, req.params.id);
    const released = await deps.handoff.release(conversation.id);
    if (!released) throw notFound('Conversation', conversation.id);
    res.json(released);
  });

  api.post('/conversations/:id/reply', async (req, res) => {
    const { text } = parseInput(replySchema, req.body ?? {});
    const conversation = await conversationOr404(deps.store, req.params.id);
    const agent = await agentIn(req, conversation);
    // Read again: the agent may have just joined.
    const current = await conversationOr404(deps.store, conversation.id);
    res.status(201).json(await sendAsAgent(deps, current, agent.id, { text }));
  });

  // The `/v1` routes the page reads, mounted as they are. Of their writes only the one the page makes
  // (replaying a failed webhook delivery) is let through: a session does what the console does, not
  // everything the API can (no webhook subscriptions or secrets, no deletions).
  api.use(function consoleReadOnly(req, _res, next) {
    if (SAFE_METHODS.has(req.method) || (req.method === 'POST' && REPLAY_PATH.test(req.path))) next();
    else
      next(new GatewayError('GW_ERR_ROUTE_NOT_FOUND', `No route for ${req.method} /console/api${req.path}`));
  });
  conversationRoutes(deps, api);
  contactRoutes(deps, api);
  api.use('/webhooks', webhooksRouter(deps));
  router.use('/api', api);

  // --- the live stream -----------------------------------------------------------------------------
  interface Stream {
    res: Response;
    sessionId: string;
    off: () => void;
  }

  const end = (stream: Stream, event?: string) => {
    if (!streams.delete(stream)) return;
    stream.off();
    if (event) stream.res.write(`event: ${event}\ndata: {}\n\n`);
    stream.res.end();
  };

  async function openStream(req: Request, res: Response): Promise<void> {
    res.writeHead(200, {
      'Content-Type': 'text/event-stream; charset=utf-8',
      'Cache-Control': 'no-store',
      'X-Accel-Buffering': 'no',
    });
    // The browser reconnects after this long if the stream breaks; the page backs off on its own too.
    res.write('retry: 2000\n\n');
    const stream: Stream = {
      res,
      sessionId: cookieOf(req, SESSION_COOKIE)!,
      off: () => {},
    };
    streams.add(stream);
    req.on('close', () => end(stream));
    try {
      stream.off = await feed.listen((notice) => {
        res.write(`event: change\ndata: ${JSON.stringify(notice)}\n\n`);
      });
    } catch (err) {
      deps.logger.warn({ err }, 'console stream: the bus is unreachable');
      end(stream, 'unavailable');
      return;
    }
    if (!streams.has(stream)) stream.off();
    else res.write('event: ready\ndata: {}\n\n');
    tick.start();
  }

  // One timer for every stream: a comment every 25 s keeps proxies from timing the stream out; the
  // session is checked every minute (a signed-out or expired session ends it with `signed-out`); and
  // shutdown ends them all at once, so no stream holds the drain.
  const tick = (() => {
    let timer: NodeJS.Timeout | undefined;
    let beats = 0;
    const run = async () => {
      beats += 1;
      const draining = deps.lifecycle.draining;
      for (const stream of [...streams]) {
        if (draining) end(stream, 'shutdown');
        else if (beats % 25 === 0) stream.res.write(': ping\n\n');
      }
      if (beats % 60 === 0) {
        for (const stream of [...streams]) {
          const session = await sessions.get(stream.sessionId).catch(() => null);
          if (session === undefined) end(stream, 'signed-out');
        }
      }
      if (streams.size === 0) {
        clearInterval(timer);
        timer = undefined;
      }
    };
    return {
      start() {
        timer ??= setInterval(() => void run(), 1_000).unref();
      },
      stop() {
        clearInterval(timer);
        timer = undefined;
      },
    };
  })();

  router.close = () => {
    tick.stop();
    for (const stream of [...streams]) end(stream, 'shutdown');
    feed.close();
  };
  return router;
}
