/**
 * @module The web-chat channel (SPEC §7): a WebSocket at `GET /webchat` authenticated with visitor JWTs,
 * the embeddable widget at `GET /widget.js` and the demo page at `GET /`. Always enabled; without a
 * configured secret or key it runs in demo mode and mints its own short-lived tokens.
 */
import type { ChannelAdapter } from '../../src/core/index.js';
import { clientAddress, defineAdapter, TrustedProxies } from '../../src/core/index.js';
import { configure, SETTINGS, WEBCHAT_DEFAULTS, type WebChatConfig } from './config.js';
import { demoSecret, mintDemoToken, visitorIdOrNew } from './demo.js';
import { Hub } from './hub.js';
import { send, typingFrame } from './outbound.js';
import { mountRoutes } from './routes.js';
import { PATH, SocketServer } from './server.js';
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
    const proxies = new TrustedProxies(ctx.config.TRUSTED_PROXIES);
    const sockets = new SocketServer({
      maxFrameBytes: config.maxFrameBytes,
      maxSocketsPerIp: config.maxSocketsPerIp,
      clientAddress: (req) =>
        clientAddress(req.socket.remoteAddress, req.headers['x-forwarded-for'], proxies),
      heartbeatMs: config.heartbeatMs,
      logger: log,
      rejected,
      originAllowed: (origin, host) =>
        isOriginAllowed(origin, host, { list: config.allowedOrigins, publicOrigin }),
      session: {
        hub,
        ingest: ctx.ingest,
        store: ctx.store,
        events: ctx.events,
        verify: (token) => verifyVisitorToken(token, verifier()),
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
      send: (conversation, message) => send(hub, conversation, message),
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
