/**
 * The web console (protocol §10): built assets served under /console on the API port,
 * behind the same mutual TLS, with a strict Content-Security-Policy. The console is a
 * client of the public API; the two routes here only tell the page who it is talking
 * as (with its CSRF token) and which trust anchors the deployment is configured with.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Router, type NextFunction, type Request, type Response } from 'express';
import helmet from 'helmet';
import { CasebridgeError } from '../errors.js';
import { principalOf } from '../http/auth.js';
import type { HttpContext } from '../http/context.js';
import { CSRF_HEADER, type CsrfTokens } from './csrf.js';

export { crossSiteGuard, csrfTokens, CSRF_HEADER, type CsrfTokens } from './csrf.js';

/** `dist/console`, where `npm run build` puts the bundle. */
export const CONSOLE_ASSET_DIR = fileURLToPath(new URL('../../console/', import.meta.url));

const ASSETS: Record<string, string> = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'app.css': 'text/css; charset=utf-8',
};

function loadAssets(dir: string): Map<string, Buffer> | undefined {
  try {
    return new Map(Object.keys(ASSETS).map((name) => [name, readFileSync(dir + name)]));
  } catch {
    return undefined;
  }
}

const securityHeaders = helmet({
  contentSecurityPolicy: {
    useDefaults: false,
    directives: {
      defaultSrc: ["'self'"],
      scriptSrc: ["'self'"],
      styleSrc: ["'self'"],
      imgSrc: ["'self'"],
      fontSrc: ["'self'"],
      connectSrc: ["'self'"],
      objectSrc: ["'none'"],
      baseUri: ["'none'"],
      formAction: ["'none'"],
      frameAncestors: ["'none'"],
      // The page builds its DOM from nodes and text only, never from HTML strings.
      requireTrustedTypesFor: ["'script'"],
      trustedTypes: ["'none'"],
    },
  },
  crossOriginEmbedderPolicy: true,
  crossOriginOpenerPolicy: { policy: 'same-origin' },
  crossOriginResourcePolicy: { policy: 'same-origin' },
  referrerPolicy: { policy: 'no-referrer' },
  strictTransportSecurity: { maxAge: 31_536_000, includeSubDomains: true },
  xFrameOptions: { action: 'deny' },
});

export function consoleRoutes(
  ctx: HttpContext,
  tokens: CsrfTokens,
  assetDir = CONSOLE_ASSET_DIR,
): Router {
  const r = Router();
  const assets = loadAssets(assetDir);
  if (!assets) ctx.logger.warn('console assets missing; run npm run build', { dir: assetDir });

  r.use('/console', securityHeaders, (_req: Request, res: Response, next: NextFunction) => {
    res.setHeader('permissions-policy', 'camera=(), microphone=(), geolocation=(), payment=()');
    next();
  });

  const serve = (name: string) => (_req: Request, res: Response) => {
    const body = assets?.get(name);
    if (!body) throw new CasebridgeError('UNAVAILABLE', 'the console is not built');
    res.type(ASSETS[name]!).send(body);
  };
  r.get(['/console', '/console/'], serve('index.html'));
  for (const name of Object.keys(ASSETS)) r.get(`/console/${name}`, serve(name));

  // Read by the page over the same connection: a cross-site page cannot read it (no CORS).
  r.get('/console/api/session', (_req: Request, res: Response) => {
    const p = principalOf(res);
    res.json({
      agency: p.agency,
      role: p.role,
      name: p.name,
      subject: p.subject,
      gatewayId: ctx.gateway.id,
      csrfHeader: CSRF_HEADER,
      csrf: tokens.tokenFor(p),
    });
  });

  // The deployment's configured anchors and the gateway's chain: the page verifies
  // signatures, chains and receipts against these, not against what a message carries.
  r.get('/console/api/trust', (_req: Request, res: Response) => {
    principalOf(res);
    res.json({
      gatewayId: ctx.gateway.id,
      anchors: ctx.trustAnchors().map((c) => c.toString()),
      gateway: ctx.gateway.chain.map((c) => c.toString()),
    });
  });

  return r;
}
