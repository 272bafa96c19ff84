import { createServer, type Server } from 'node:https';
import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import { consoleRoutes, crossSiteGuard, csrfTokens } from '../console/index.js';
import { CasebridgeError } from '../errors.js';
import { auditRoutes } from './audit.js';
import { batchRoutes } from './batch.js';
import { eventRoutes } from './events.js';
import { requireClient } from './auth.js';
import type { HttpContext } from './context.js';
import { fileRoutes } from './files.js';
import { messageRoutes } from './messages.js';
import { refusals } from './refusals.js';
import { buildOpenApi } from './openapi.js';
import { bodyGuard, boundServer, Slots, type InFlightLimits } from './limits.js';
import { errorHandler } from './problem.js';
import { rateLimit } from './rate.js';
import { reviewRoutes } from './review.js';

export function createHttpApp(ctx: HttpContext): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.set('query parser', 'simple');

  app.use((req: Request, res: Response, next: NextFunction) => {
    const started = process.hrtime.bigint();
    res.setHeader('cache-control', 'no-store');
    res.on('finish', () => {
      const route = (req.route as { path?: string } | undefined)?.path ?? 'unmatched';
      const code = (res.locals['code'] as string | undefined) ?? '';
      ctx.metrics.requests.inc({ route, method: req.method, status: String(res.statusCode), code });
      // Access log: route patterns, never paths with ids or query strings.
      const p = res.locals['principal'] as { agency: string; role: string } | undefined;
      ctx.logger.info('request', {
        method: req.method,
        route,
        status: res.statusCode,
        ...(code ? { code } : {}),
        ms: Number(process.hrtime.bigint() - started) / 1e6,
        ...(p ? { agency: p.agency, role: p.role } : {}),
      });
    });
    next();
  });
  app.use(requireClient(ctx.verifyClient, ctx.now));
  // protocol §10: the browser sends the client certificate on its own, so no
  // state-changing call may come from another site.
  const csrf = csrfTokens(ctx.gateway.key);
  app.use(crossSiteGuard(csrf));
  // protocol §12: rate, then the body rules and bounds, before any route reads a body.
  app.use(rateLimit(ctx.rateLimiter));
  app.use(bodyGuard(ctx.limits, new Slots(ctx.limits.maxBodies)));
  // The submission routes first: POST /v1/messages is the hot path, and every
  // router in front of it is a layer each request is matched against.
  app.use(messageRoutes(ctx));

  // Built once; with port 0 (tests) the bound port is known only at the first request.
  let openapi: string | undefined;
  app.get('/v1/openapi.json', (req: Request, res: Response) => {
    const port = ctx.listen.port === 0 ? req.socket.localPort : ctx.listen.port;
    openapi ??= JSON.stringify(
      buildOpenApi(ctx.schemas, { serverUrl: serverUrl(ctx.listen.host, port) }),
    );
    res.type('application/json').send(openapi);
  });
  app.use(fileRoutes(ctx, ctx.files));
  app.use(batchRoutes(ctx));
  app.use(reviewRoutes(ctx));
  app.use(eventRoutes(ctx));
  app.use(auditRoutes(ctx));
  app.use(consoleRoutes(ctx, csrf));
  app.use((_req: Request, _res: Response, next: NextFunction) => {
    next(new CasebridgeError('NOT_FOUND', 'no such resource'));
  });
  // Refusals raised before the submission routes (limits.ts) are recorded too.
  app.use('/v1/messages', refusals(ctx));
  app.use(errorHandler(ctx.logger));
  return app;
}

export interface TlsMaterial {
  key: string;
  /** The gateway's certificate chain, leaf first. */
  cert: string;
  /** Trust anchors, advertised to clients as acceptable issuers. */
  ca: string[];
}

/**
 * RFC 9325 §4.2: TLS 1.2 with ECDHE and AEAD ciphers only (no CBC, no SHA-1 MAC, no
 * static RSA key exchange); the TLS 1.3 suites are all AEAD.
 */
export const TLS_CIPHERS = [
  'TLS_AES_128_GCM_SHA256',
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

/**
 * protocol §1.2: HTTPS only, TLS 1.2 at least (1.3 preferred), a client certificate
 * always asked for. The handshake completes without one so the refusal can be
 * problem+json. protocol §12 bounds on handshake, headers, idle time and connections.
 */
export function createHttpsServer(app: Express, tls: TlsMaterial, limits: InFlightLimits): Server {
  const server = createServer(
    {
      key: tls.key,
      cert: tls.cert,
      ca: tls.ca,
      requestCert: true,
      rejectUnauthorized: false,
      minVersion: 'TLSv1.2',
      maxVersion: 'TLSv1.3',
      ciphers: TLS_CIPHERS,
      honorCipherOrder: true,
      handshakeTimeout: limits.headerTimeoutMs,
      connectionsCheckingInterval: Math.min(1000, limits.headerTimeoutMs),
    },
    app,
  );
  boundServer(server, app, limits);
  return server;
}

/** `https://host:port`, an IPv6 literal in brackets (RFC 3986 §3.2.2). */
function serverUrl(host: string, port: number | undefined): string {
  const h = host.includes(':') ? `[${host}]` : host;
  return `https://${h}${port === undefined ? '' : `:${port}`}`;
}
