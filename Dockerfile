# casebridge gateway. Build: docker build -t casebridge .
# Run with a real PKI mounted read-only and the data directory on a volume:
#   docker run -p 8443:8443 -v /etc/casebridge:/etc/casebridge:ro -v casebridge-data:/data \
#     -e CASEBRIDGE_HOST=0.0.0.0 -e CASEBRIDGE_DATA_DIR=/data \
#     -e CASEBRIDGE_TLS_CERT=/etc/casebridge/gateway.crt.pem -e CASEBRIDGE_TLS_KEY=/etc/casebridge/gateway.key.pem \
#     -e CASEBRIDGE_TRUST=/etc/casebridge/trust.pem -e CASEBRIDGE_CRL=/etc/casebridge/crl.pem \
#     -e CASEBRIDGE_REGISTRY=/etc/casebridge/registry.json -e CASEBRIDGE_LOG_KEY=/etc/casebridge/log.key.pem \
#     casebridge
FROM node:20-bookworm-slim AS build
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
COPY test ./test
COPY bench ./bench
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY schemas ./schemas
COPY bin ./bin
USER node
EXPOSE 8443
# The admin port (9464) listens on loopback only; probe it from inside the container.
HEALTHCHECK CMD node -e "fetch('http://127.0.0.1:'+(process.env.CASEBRIDGE_ADMIN_PORT||9464)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
CMD ["node", "dist/src/cli/main.js", "serve"]
