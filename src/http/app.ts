import { createServer, type Server } from 'node:https';
import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import { consoleRoutes, crossSiteGuard, csrfTokens } from '../console/index.js';
import { CasebridgeError } from '../errors.js';
import { auditRoutes } from './audit.js';
import { batchRoutes } from './batch.js';
import { eventRoutes } from './events.js';
import { requireClient } from './auth.js';
import type { HttpContext } from './context.js';
import { messageRoutes } from './messages.js';
import { buildOpenApi } from './openapi.js';
import { errorHandler } from './problem.js';
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

  // Built once; with port 0 (tests) the bound port is known only at the first request.
  let openapi: string | undefined;
  app.get('/v1/openapi.json', (req: Request, res: Response) => {
    const port = ctx.listen.port === 0 ? req.socket.localPort : ctx.listen.port;
    openapi ??= JSON.stringify(
      buildOpenApi(ctx.schemas, { serverUrl: serverUrl(ctx.listen.host, port) }),
    );
    res.type('application/json').send(openapi);
  });
  app.use(batchRoutes(ctx));
  app.use(messageRoutes(ctx));
  app.use(reviewRoutes(ctx));
  app.use(eventRoutes(ctx));
  app.use(auditRoutes(ctx));
  app.use(consoleRoutes(ctx, csrf));
  app.use((_req: Request, _res: Response, next: NextFunction) => {
    next(new CasebridgeError('NOT_FOUND', 'no such resource'));
  });
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
 * protocol §1.2: HTTPS only, TLS 1.2 at least, a client certificate always asked for.
 * The handshake completes without one so the refusal can be problem+json.
 */
export function createHttpsServer(app: Express, tls: TlsMaterial): Server {
  return createServer(
    {
      key: tls.key,
      cert: tls.cert,
      ca: tls.ca,
      requestCert: true,
      rejectUnauthorized: false,
      minVersion: 'TLSv1.2',
    },
    app,
  );
}

/** `https://host:port`, an IPv6 literal in brackets (RFC 3986 §3.2.2). */
function serverUrl(host: string, port: number | undefined): string {
  const h = host.includes(':') ? `[${host}]` : host;
  return `https://${h}${port === undefined ? '' : `:${port}`}`;
}
