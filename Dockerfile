# syntax=docker/dockerfile:1
# taskstream gateway image (SPEC §1, docs/deploy.md).
# Build: docker build -t taskstream .   Run: docker run -p 8080:8080 taskstream

ARG BUN_VERSION=1.4
ARG NODE_VERSION=22

# Stage 1: production dependencies only, at the versions in package-lock.json;
# devDependencies (bun, deno, typescript, linters) never enter the image.
# `npm install`, not `npm ci`: the lock lacks deno's other-platform optional
# packages, which makes `npm ci` refuse it even with --omit=dev.
FROM node:${NODE_VERSION}-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# effect, hono and ioredis are plain JavaScript: no install scripts to run.
RUN npm install --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm cache clean --force

# Stage 2: the runtime. Bun runs the TypeScript sources directly, no build step.
FROM oven/bun:${BUN_VERSION}-slim AS runtime
WORKDIR /app
ENV NODE_ENV=production \
    PORT=8080 \
    HOST=0.0.0.0

COPY --from=deps --chown=root:root /app/node_modules ./node_modules
COPY --chown=root:root package.json ./
COPY --chown=root:root src ./src

# The files stay owned by root and read-only to the process; it runs as the
# image's unprivileged "bun" user (uid 1000) and writes nothing to disk.
USER bun

EXPOSE 8080

# Liveness only: /healthz answers while the process serves HTTP. Readiness
# (/readyz: log reachable, not draining) belongs to the load balancer or
# orchestrator probe, so a Redis outage does not get containers restarted.
# The slim image has no curl, so bun itself makes the request.
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
  CMD ["bun", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]

# SIGTERM starts the graceful drain (readyz 503, streams closed with WS 1012,
# exit within DRAIN_MS). Give `docker stop -t` / stop_grace_period more than
# DRAIN_MS, or the drain is cut short by SIGKILL.
STOPSIGNAL SIGTERM

# exec form, and the base image's entrypoint execs too: bun ends up as PID 1
# and receives SIGTERM itself, with no shell in between.
CMD ["bun", "src/main.bun.ts"]
