# casebridge gateway image. Build from the repository root:
#   docker build -t casebridge .
# The image holds no key, certificate or registry: mount them read-only and point the
# CASEBRIDGE_* variables at them (docs/operations.md, "Running in containers";
# deploy/compose.yaml is a complete example with two gateways).
#
#   docker run -p 8443:8443 -v /etc/casebridge:/etc/casebridge:ro -v casebridge-data:/data \
#     -e CASEBRIDGE_TLS_CERT=/etc/casebridge/gateway.crt.pem \
#     -e CASEBRIDGE_TLS_KEY=/etc/casebridge/gateway.key.pem \
#     -e CASEBRIDGE_TRUST=/etc/casebridge/trust.pem -e CASEBRIDGE_CRL=/etc/casebridge/crl.pem \
#     -e CASEBRIDGE_REGISTRY=/etc/casebridge/registry.json \
#     -e CASEBRIDGE_LOG_KEY=/etc/casebridge/log.key.pem \
#     -e CASEBRIDGE_DATA_KEY=/etc/casebridge/data.key.pem \
#     casebridge
#
# The entry point is the `casebridge` command, so `docker run casebridge audit verify …`
# works too; the default command is `serve`.

# Stage 1: everything `npm run build` needs (tsc over src, test and bench, then the
# console bundle), with dev dependencies; afterwards the dev dependencies are pruned.
FROM node:20-bookworm-slim AS build
WORKDIR /app
# better-sqlite3 falls back to compiling its addon when no prebuilt binary fits.
RUN apt-get update \
  && apt-get install -y --no-install-recommends python3 make g++ \
  && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
COPY test ./test
COPY bench ./bench
COPY schemas ./schemas
RUN npm run build && npm prune --omit=dev --no-audit --no-fund

# Stage 2: the runtime: production dependencies, the compiled gateway, the console
# assets, the JSON Schemas it validates with; no compiler, no tests, no dev dependencies.
FROM node:20-bookworm-slim
ENV NODE_ENV=production \
    CASEBRIDGE_HOST=0.0.0.0 \
    CASEBRIDGE_DATA_DIR=/data
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist/src ./dist/src
COPY --from=build /app/dist/console ./dist/console
COPY package.json ./
COPY schemas ./schemas
COPY bin ./bin
# The data directory, and /shared where a deployment of several gateways mounts the one
# volume they share (CASEBRIDGE_FILES_DIR=/shared/files, CASEBRIDGE_KEY_DIR=/shared/keys),
# belong to the unprivileged `node` user (uid 1000) of the base image; a fresh named
# volume takes that ownership over.
RUN mkdir -p /data /shared/files /shared/keys \
  && chown -R node:node /data /shared \
  && chmod 700 /shared/keys
VOLUME ["/data"]
USER node
# The API (mutual TLS). The admin port (CASEBRIDGE_ADMIN_PORT, 9464: /healthz, /readyz,
# /metrics) keeps its default address, the container's loopback: those three answer
# anyone without authentication, and an image cannot know whether the network it is
# run on is private (`docker run -p`, a host network, a flat bridge). So it is not
# exposed here; where the network is private (deploy/compose.yaml, a Kubernetes pod)
# the deployment sets CASEBRIDGE_ADMIN_HOST=0.0.0.0 for its balancer and Prometheus.
# The health check runs inside the container, so it works either way: it dials the
# configured admin address, or loopback when that is a wildcard.
EXPOSE 8443
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["node", "-e", "const h=process.env.CASEBRIDGE_ADMIN_HOST||'127.0.0.1',a=h==='0.0.0.0'||h==='::'?'127.0.0.1':h.includes(':')?'['+h+']':h;fetch('http://'+a+':'+(process.env.CASEBRIDGE_ADMIN_PORT||9464)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["node", "bin/casebridge.js"]
CMD ["serve"]
