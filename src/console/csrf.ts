/**
 * Cross-site request forgery (protocol §10). The credential is a client certificate,
 * which a browser presents on its own to any page that makes it talk to the gateway:
 * a form or fetch from another site would carry the officer's identity. So every
 * state-changing request that a browser sends must come from our own origin and
 * carry the console's token in a custom header (which no cross-site request can set
 * without a CORS preflight we never grant). Agency systems are not browsers: they
 * send neither `Origin` nor `Sec-Fetch-*` and are not affected.
 */
import { createHmac, hkdfSync, timingSafeEqual, type KeyObject } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import { CasebridgeError } from '../errors.js';
import type { Principal } from '../pki/types.js';

export const CSRF_HEADER = 'x-casebridge-csrf';
const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
const SAME_SITE_FETCH = new Set(['same-origin', 'none']);

export interface CsrfTokens {
  /** The token of a principal: the same on every gateway sharing the TLS key. */
  tokenFor(p: Principal): string;
  verify(p: Principal, token: string | undefined): boolean;
}

/**
 * Tokens are an HMAC of the principal's certificate subject under a key derived from
 * the gateway's private key, so several gateways behind one name agree on them and
 * nothing needs storing. A token is worth nothing without the certificate it names.
 */
export function csrfTokens(gatewayKey: KeyObject): CsrfTokens {
  const secret = Buffer.from(
    hkdfSync(
      'sha256',
      gatewayKey.export({ type: 'pkcs8', format: 'der' }),
      'casebridge',
      'console csrf v1',
      32,
    ),
  );
  const tokenFor = (p: Principal) =>
    createHmac('sha256', secret).update(p.subject).digest('base64url');
  return {
    tokenFor,
    verify(p, token) {
      if (token === undefined) return false;
      const want = Buffer.from(tokenFor(p));
      const got = Buffer.from(token);
      return got.length === want.length && timingSafeEqual(got, want);
    },
  };
}

function sameOrigin(req: Request, origin: string): boolean {
  const host = req.headers.host;
  return host !== undefined && origin === `https://${host}`;
}

/**
 * App-wide guard for state-changing methods. Mounted after client authentication so
 * the token can be checked against the principal.
 */
export function crossSiteGuard(tokens: CsrfTokens) {
  return (req: Request, res: Response, next: NextFunction): void => {
    if (SAFE_METHODS.has(req.method)) return next();
    const site = req.headers['sec-fetch-site'];
    const origin = req.headers.origin;
    const fromBrowser = site !== undefined || origin !== undefined;
    if (!fromBrowser) return next();
    if (typeof site === 'string' && !SAME_SITE_FETCH.has(site)) {
      return next(new CasebridgeError('CROSS_SITE_REFUSED', 'cross-site requests are refused'));
    }
    if (origin !== undefined && !sameOrigin(req, origin)) {
      return next(new CasebridgeError('CROSS_SITE_REFUSED', 'cross-origin requests are refused'));
    }
    const principal = res.locals['principal'] as Principal | undefined;
    const token = req.headers[CSRF_HEADER];
    if (!principal || !tokens.verify(principal, typeof token === 'string' ? token : undefined)) {
      return next(
        new CasebridgeError('CROSS_SITE_REFUSED', `browser requests need the ${CSRF_HEADER} token`),
      );
    }
    next();
  };
}
