import type { DetailedPeerCertificate, TLSSocket } from 'node:tls';
import type { NextFunction, Request, Response } from 'express';
import { CasebridgeError } from '../errors.js';
import type { Principal, Role } from '../pki/types.js';

/** Verifies a TLS peer's chain (DER, leaf first); throws an error with `failure` on refusal. */
export type ChainVerifier = (chain: Buffer[], at: Date) => Principal;

/**
 * The chain a TLS connection presented cannot change during the connection, so it
 * is read once per socket; the verdict is still computed per request (CRL reloads).
 */
const chains = new WeakMap<TLSSocket, Buffer[]>();

/** The certificates the TLS client presented, leaf first, as DER. */
export function peerChain(socket: TLSSocket): Buffer[] {
  let chain = chains.get(socket);
  if (chain === undefined) {
    chain = readPeerChain(socket);
    chains.set(socket, chain);
  }
  return chain;
}

function readPeerChain(socket: TLSSocket): Buffer[] {
  // Without a client certificate Node returns an empty object.
  const leaf: DetailedPeerCertificate | undefined = socket.getPeerCertificate(true);
  if (!leaf || !leaf.raw) return [];
  const chain: Buffer[] = [];
  const seen = new Set<string>();
  let cur: DetailedPeerCertificate | undefined = leaf;
  while (cur && cur.raw && !seen.has(cur.fingerprint256) && chain.length < 10) {
    seen.add(cur.fingerprint256);
    chain.push(cur.raw);
    cur = cur.issuerCertificate;
  }
  return chain;
}

/**
 * protocol §1.2: the handshake always completes; the request is then refused with
 * problem+json when no certificate, or an untrusted one, was presented. The
 * chain is checked on every request so a CRL reload takes effect at once.
 */
export function requireClient(verify: ChainVerifier, now: () => Date) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const chain = peerChain(req.socket as TLSSocket);
    if (chain.length === 0) {
      next(
        new CasebridgeError(
          'CLIENT_CERT_REQUIRED',
          'present a client certificate issued by a trusted CA',
        ),
      );
      return;
    }
    try {
      res.locals['principal'] = verify(chain, now());
    } catch (e) {
      const failure = (e as { failure?: string }).failure;
      if (failure === undefined) {
        next(e);
        return;
      }
      next(
        new CasebridgeError('CLIENT_CERT_UNTRUSTED', `client certificate refused: ${failure}`, {
          cause: e,
        }),
      );
      return;
    }
    next();
  };
}

export function principalOf(res: Response): Principal {
  return res.locals['principal'] as Principal;
}

export function requireRole(res: Response, roles: readonly Role[], what: string): Principal {
  const p = principalOf(res);
  if (!roles.includes(p.role)) {
    throw new CasebridgeError('FORBIDDEN_ROLE', `${what} is for ${roles.join(' or ')} principals`);
  }
  return p;
}
