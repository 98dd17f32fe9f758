# syntax=docker/dockerfile:1
# ringmaster orchestrator: multi-stage build on Node 22 LTS (slim, Debian).
# Not built on the project's CI machines (no Docker engine there); see README.
ARG NODE_VERSION=22

# Toolchain for better-sqlite3, a native module compiled when no prebuilt binary matches.
FROM node:${NODE_VERSION}-slim AS toolchain
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./

# All dependencies, then the build: the library into dist/ (tsc) and the service's
# bundle into dist/bundle/ (scripts/build-service.ts, esbuild), with V8's code cache
# for it, made by starting the bundle once here on loopback. The cache is only valid
# for the node that made it: this stage's node is the runtime's (the same
# node:${NODE_VERSION}-slim image); with another node the launcher compiles the bundle
# from source instead.
FROM toolchain AS build
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY scripts ./scripts
COPY src ./src
RUN npm run build

# Production dependencies only (native modules compiled here, with the toolchain).
FROM toolchain AS prod-deps
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

FROM node:${NODE_VERSION}-slim AS runtime
ENV NODE_ENV=production \
    PORT=8080 \
    METRICS_PORT=9091 \
    DATA_DIR=/data
WORKDIR /app
COPY --from=prod-deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
# /data is where the Fly volume mounts; owned by the unprivileged `node` user (uid 1000).
RUN mkdir -p /data && chown node:node /data
EXPOSE 8080 9091
# A freshly created Fly volume is mounted root-owned: fix the ownership of /data once,
# then run the service as `node` (never as root). Started as non-root, it just runs.
ENTRYPOINT ["/bin/sh", "-c", "if [ \"$(id -u)\" = 0 ]; then [ \"$(stat -c %u /data)\" = 1000 ] || chown -R node:node /data; exec setpriv --reuid=node --regid=node --init-groups -- \"$@\"; fi; exec \"$@\"", "--"]
# The same command as `npm start`: start.sh exec's node on the bundle's launcher, so
# node is the process that signals reach.
CMD ["sh", "dist/bundle/start.sh"]
