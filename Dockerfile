# syntax=docker/dockerfile:1
#
# One image build for the Vigil repository, with a target per service of the compose stack
# (docker-compose.yml builds it with the repository root as context):
#
#   docker build --target example-api -t vigil/marketedge-api:0.1.0 .
#   docker build --target evaluator   -t vigil/evaluator:0.1.0 .
#   docker build --target collector   -t vigil/otelcol:0.165.1 .
#
# The API and the evaluator run as the unprivileged `node` user (uid 1000) of the official Node
# image, on code owned by root (read-only to them), the Collector as uid 10001. None needs to
# write anything: the evaluator keeps its state in memory, the example API its demo data, the
# Collector its queues.

ARG NODE_IMAGE=node:20-bookworm-slim
# The Go that compiles the Collector: the generated go.mod of collector/builder-config.yaml asks for 1.26.
ARG GO_IMAGE=golang:1.26-bookworm
ARG COLLECTOR_RUNTIME_IMAGE=debian:12-slim

# ── build: install everything, compile the workspaces, then drop the dev dependencies ─────────
FROM ${NODE_IMAGE} AS build
WORKDIR /app
ENV CI=true \
    NPM_CONFIG_AUDIT=false \
    NPM_CONFIG_FUND=false \
    NPM_CONFIG_UPDATE_NOTIFIER=false
# The whole tree (minus .dockerignore): every workspace listed in package.json must be present
# for `npm ci`, and copying them one by one would break as soon as a workspace is added.
COPY . .
RUN --mount=type=cache,target=/root/.npm npm ci
RUN npm run build \
 && npm prune --omit=dev \
 && rm -rf test bench docs .ci packages/*/test

# ── runtime: the built tree and its production dependencies ────────────────────────────────
FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app /app
USER node

# ── the example MarketEdge API (examples/marketedge-api) ───────────────────────────────────
# Environment (see examples/marketedge-api/src/server.ts and docs/sdk.md):
#   PORT, HOST                  where it listens (8000 on every address in the container)
#   VIGIL_DEMO_BREAK            routers/dependencies to break, e.g. user_management (comma list)
#   VIGIL_DEMO_RUNTIME_FAULT    the router that `kill -USR2` makes answer 503 (default auth)
#   VIGIL_ENVIRONMENT           deployment.environment.name
#   VIGIL_LOG_LEVEL             pino level (default info)
#   OTEL_*                      where and how telemetry is exported (docs/telemetry.md)
# The manifest is examples/marketedge-api/vigil.yaml (VIGIL_MANIFEST overrides it).
FROM runtime AS example-api
WORKDIR /app/examples/marketedge-api
ENV HOST=0.0.0.0 \
    PORT=8000
EXPOSE 8000
CMD ["node", "dist/server.js"]

# ── the Vigil evaluator (packages/evaluator) ────────────────────────────────────────────────
# Reads /etc/vigil/evaluator.yaml: the compose stack mounts evaluator.yaml there; the
# copy baked in here is the same file, so the image also runs on its own. Port 9464: the status
# API, /health, /ready and (source `otlp`) the OTLP/HTTP JSON receiver.
FROM runtime AS evaluator
COPY evaluator.yaml /etc/vigil/evaluator.yaml
EXPOSE 9464
ENTRYPOINT ["node", "/app/packages/evaluator/dist/cli.js"]
CMD ["--config", "/etc/vigil/evaluator.yaml"]

# ── the OpenTelemetry Collector: the same manifest scripts/build-collector.sh builds ──────────
# ocb (the OpenTelemetry Collector Builder) at the manifest's core release generates the sources
# from collector/builder-config.yaml and compiles them (CGO off: a static binary).
FROM ${GO_IMAGE} AS collector-build
WORKDIR /src
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    go install go.opentelemetry.io/collector/cmd/builder@v0.165.0
COPY collector/builder-config.yaml collector/builder-config.yaml
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 builder --config collector/builder-config.yaml \
 && install -D -m 0755 .stack/otelcol/build/vigil-otelcol /out/vigil-otelcol

FROM ${COLLECTOR_RUNTIME_IMAGE} AS collector
COPY --from=collector-build /out/vigil-otelcol /usr/local/bin/vigil-otelcol
# The compose stack mounts collector-config.yaml here; the copy baked in is the same file.
COPY collector-config.yaml /etc/vigil/collector-config.yaml
USER 10001
# 4317 OTLP/gRPC, 4318 OTLP/HTTP, 13133 health (GET /status), 8888 its own metrics.
EXPOSE 4317 4318 13133 8888
ENTRYPOINT ["/usr/local/bin/vigil-otelcol"]
CMD ["--config", "/etc/vigil/collector-config.yaml"]
