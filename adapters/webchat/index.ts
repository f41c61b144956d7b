/**
 * @module The web-chat channel (SPEC §7): a WebSocket at `GET /webchat` authenticated with visitor JWTs,
 * the embeddable widget at `GET /widget.js` and the demo page at `GET /`. Always enabled; without a
 * configured secret or key it runs in demo mode and mints its own short-lived tokens.
 */

import type { ChannelAdapter } from '../../src/core/index.js';
import { clientAddress, defineAdapter, TrustedProxies } from '../../src/core/index.js';
import type { GatewayDeps } from '../../src/deps.js';
import { AttachmentStore, attachmentRoute } from '../email/attachments.js';
import { configure, SETTINGS, WEBCHAT_DEFAULTS, type WebChatConfig } from './config.js';
import { demoSecret, mintDemoToken, visitorIdOrNew } from './demo.js';
import { Hub } from './hub.js';
import { send, typingFrame } from './outbound.js';
import { mountRoutes } from './routes.js';
import { PATH, SocketServer } from './server.js';
import { mountUploads, WebChatFiles } from './uploads.js';
import { isOriginAllowed, verifyVisitorToken } from './verify.js';

export default defineAdapter<WebChatConfig>({
  name: 'webchat',
  settings: SETTINGS,
  configure,
  create(ctx, config): ChannelAdapter {
    const log = ctx.logger;
    const demo = config.keys.mode === 'demo';
    let secret: string | undefined;
    const verifier = () => ({
      keys: config.keys,
      demoSecret: secret,
      audience: config.audience,
      issuer: config.issuer,
    });
    const publicOrigin = new URL(ctx.publicUrl).origin;
    const hub = new Hub({
      store: ctx.store,
      events: ctx.events,
      logger: log,
      typingTimeoutMs: config.typingTimeoutMs,
    });
    const rejected = (reason: string) => ctx.rejected('webchat', reason);
    // Same records and API route as mail attachments: one `GET /v1/attachments/:id` serves every channel.
    const attachments = new AttachmentStore(ctx.store.kv, ctx.publicUrl);
    const files = new WebChatFiles(ctx.store.kv, attachments);
    const originAllowed = (origin: string | undefined, host: string | undefined) =>
      isOriginAllowed(origin, host, { list: config.allowedOrigins, publicOrigin });
    const verify = (token: string) => verifyVisitorToken(token, verifier());
    /** Set once the gateway is built: the bot configuration's greeting, read at every `ready`. */
    let greeting: () => string | null = () => null;
    const upload =
      config.upload.maxBytes > 0
        ? { maxBytes: config.upload.maxBytes, types: [...config.upload.types] }
        : undefined;
    const proxies = new TrustedProxies(ctx.config.TRUSTED_PROXIES);
    const sockets = new SocketServer({
      maxFrameBytes: config.maxFrameBytes,
      maxSocketsPerIp: config.maxSocketsPerIp,
      clientAddress: (req) =>
        clientAddress(req.socket.remoteAddress, req.headers['x-forwarded-for'], proxies),
      heartbeatMs: config.heartbeatMs,
      logger: log,
      rejected,
      originAllowed,
      session: {
        hub,
        ingest: ctx.ingest,
        store: ctx.store,
        events: ctx.events,
        verify,
        files,
        hello: () => {
          const text = greeting();
          return { ...(text ? { greeting: text } : {}), ...(upload ? { upload } : {}) };
        },
        rejected,
        maxMsgsPerS: config.maxMsgsPerS,
        maxSocketsPerVisitor: config.maxSocketsPerVisitor,
        replayPage: config.replayPage,
        sendBufferBytes: config.sendBufferBytes,
        slowSocketMs: config.slowSocketMs,
        authTimeoutMs: WEBCHAT_DEFAULTS.AUTH_TIMEOUT_MS,
      },
    });
    const wsUrl = `${ctx.publicUrl.replace(/^http/, 'ws')}${PATH}`;

    return {
      name: 'webchat',
      channels: ['webchat'],
      routes(router) {
        mountRoutes(router, {
          ...(demo
            ? {
                mintDemoToken: (visitorId: unknown) => {
                  if (!secret) throw new Error('web chat is not started yet');
                  return mintDemoToken(secret, visitorIdOrNew(visitorId), {
                    ttlS: WEBCHAT_DEFAULTS.DEMO_TOKEN_TTL_S,
                    audience: config.audience,
                    issuer: config.issuer,
                  });
                },
              }
            : {}),
        });
        mountUploads(router, files, {
          store: ctx.store,
          attachments,
          maxBytes: config.upload.maxBytes,
          types: config.upload.types,
          verify,
          originAllowed,
          rejected,
        });
        router.get('/v1/attachments/:id', ctx.requireApiKey, attachmentRoute(attachments));
      },
      attach(deps: GatewayDeps) {
        // Only the greeting leaves the bot configuration; nothing else of it reaches a browser.
        greeting = () => deps.botConfig.service.current.greeting;
      },
      async start(server) {
        if (demo) secret = await demoSecret(ctx.store.kv);
        await hub.start();
        sockets.attach(server);
      },
      async stop() {
        await sockets.close();
        await hub.stop();
      },
      send: (conversation, message) => send(hub, conversation, message, files),
      signal(conversation, signal) {
        hub.publish(conversation.id, typingFrame(signal)).catch((err: unknown) => {
          log.warn({ err, conversationId: conversation.id }, 'web-chat typing signal not published');
        });
      },
      describe() {
        const origins =
          config.allowedOrigins?.join(', ') ?? `${publicOrigin} and pages served by this gateway`;
        const lines = [
          `webchat: socket ${wsUrl}, widget ${ctx.publicUrl}/widget.js, demo page ${ctx.publicUrl}/ (origins: ${origins})`,
        ];
        if (demo) {
          lines.push(
            'webchat: DEMO MODE (no WEBCHAT_JWT_SECRET or WEBCHAT_JWT_PUBLIC_KEY): the gateway mints ' +
              `${WEBCHAT_DEFAULTS.DEMO_TOKEN_TTL_S / 60}-minute visitor tokens for anyone at POST ${ctx.publicUrl}/webchat/demo-token; ` +
              'set one of them before going live',
          );
        }
        return lines;
      },
    };
  },
});
