# syntax=docker/dockerfile:1
# The image builds and runs on the current Node LTS (24, Debian bookworm, slim); the code itself keeps
# working on Node >= 20.12 (package.json "engines"), which CI and development may still use.
#
# The base image is pinned by digest, so a rebuild gets exactly the same Node and Debian packages.
# This digest is the multi-arch index of node:24.18.0-bookworm-slim as pinned by many public
# projects; it was not pulled from this repository's build machine (no Docker there). To move to a
# newer Node 24 release, look the digest up and replace both parts of the line (or pass
# --build-arg NODE_IMAGE=...):
#   docker buildx imagetools inspect node:24-bookworm-slim       # "Digest:" is the index digest
#   # or: docker pull node:24-bookworm-slim && docker inspect --format '{{index .RepoDigests 0}}' node:24-bookworm-slim
ARG NODE_IMAGE=node:24.18.0-bookworm-slim@sha256:6f7b03f7c2c8e2e784dcf9295400527b9b1270fd37b7e9a7285cf83b6951452d

# Build stage: install all dependencies and compile TypeScript.
FROM ${NODE_IMAGE} AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY adapters ./adapters
COPY config ./config
COPY scripts/copy-assets.mjs ./scripts/
COPY console ./console
# Compile, then copy the non-TypeScript assets the compiled code reads next to itself
# (Lua scripts; the web-chat widget and demo page), then bundle the operator console.
RUN npm run build

# Runtime stage: production dependencies only, non-root.
FROM ${NODE_IMAGE}
# Production: no generated API key is kept on disk (set API_KEYS), and the start-up log says so
# loudly when REDIS_URL is missing (embedded in-memory backend).
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY --from=build /app/console/dist ./console/dist
USER node
# HTTP (PORT, default 3000) and the email channel's SMTP listener (EMAIL_SMTP_PORT; 2525 is the
# documented choice, published as 25 on the host for a real MX).
EXPOSE 3000 2525
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
CMD ["node", "dist/src/main.js"]
