import { createServer, type Server } from 'node:http';
import type { Metrics } from './metrics.js';

export interface Readiness {
  ready: boolean;
  checks: Record<string, { ok: boolean; detail?: string }>;
}

/** Plain HTTP on loopback: /healthz, /readyz, /metrics (protocol §8). */
export function createAdminServer(
  metrics: Metrics,
  readiness: () => Promise<Readiness>,
  refresh: () => Promise<void>,
): Server {
  return createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET') {
      res.writeHead(405, { allow: 'GET' }).end();
      return;
    }
    if (path === '/healthz') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
      return;
    }
    if (path === '/readyz') {
      readiness()
        .then((r) =>
          res
            .writeHead(r.ready ? 200 : 503, { 'content-type': 'application/json' })
            .end(JSON.stringify(r)),
        )
        .catch(() => res.writeHead(500).end());
      return;
    }
    if (path === '/metrics') {
      refresh()
        .then(() => metrics.registry.metrics())
        .then((body) =>
          res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(body),
        )
        .catch(() => res.writeHead(500).end());
      return;
    }
    res.writeHead(404).end();
  });
}
