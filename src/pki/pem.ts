import { X509Certificate } from 'node:crypto';
import { PkiError } from './errors.js';

/** RFC 7468 §2 textual encoding. */
export function toPem(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der).toString('base64');
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/** Every `label` block of a PEM text, decoded, in order. Other blocks are ignored. */
export function pemBlocks(pem: string, label: string): Buffer[] {
  const re = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([A-Za-z0-9+/=\s]*?)-----END ([A-Z0-9 ]+)-----/g;
  const out: Buffer[] = [];
  for (const m of pem.matchAll(re)) {
    if (m[1] !== label) continue;
    if (m[3] !== label)
      throw new PkiError('malformed', `PEM block ${label} ends with ${m[3] ?? '?'}`);
    const b64 = (m[2] ?? '').replace(/\s+/g, '');
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length % 4 !== 0) {
      throw new PkiError('malformed', `PEM block ${label} is not base64`);
    }
    out.push(Buffer.from(b64, 'base64'));
  }
  return out;
}

function x509(der: Buffer, what: string): X509Certificate {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(der);
  } catch (e) {
    throw new PkiError('malformed', `${what} is not an X.509 certificate`, { cause: e });
  }
  if (!cert.raw.equals(der)) throw new PkiError('malformed', `${what} has trailing bytes`);
  return cert;
}

/** All CERTIFICATE blocks of a PEM text, in order; at least one. */
export function parsePemChain(pem: string): X509Certificate[] {
  const ders = pemBlocks(pem, 'CERTIFICATE');
  if (ders.length === 0) throw new PkiError('malformed', 'no CERTIFICATE block');
  return ders.map((d, i) => x509(d, `certificate ${i}`));
}

const STD_B64 = /^[A-Za-z0-9+/]+={0,2}$/;

/**
 * RFC 7515 §4.1.6 `x5c`: an array of base64 (not base64url) DER certificates,
 * leaf first. Anything else is PkiError('malformed').
 */
export function chainFromX5c(x5c: unknown, maxLength = 8): X509Certificate[] {
  if (!Array.isArray(x5c) || x5c.length === 0)
    throw new PkiError('malformed', 'x5c must be a non-empty array');
  if (x5c.length > maxLength)
    throw new PkiError('malformed', `x5c holds more than ${maxLength} certificates`);
  return x5c.map((item, i) => {
    if (typeof item !== 'string' || item.length % 4 !== 0 || !STD_B64.test(item)) {
      throw new PkiError('malformed', `x5c[${i}] is not base64`);
    }
    const der = Buffer.from(item, 'base64');
    // Canonical only (RFC 4648 §3.5): one certificate, one text.
    if (der.toString('base64') !== item)
      throw new PkiError('malformed', `x5c[${i}] is not canonical base64`);
    return x509(der, `x5c[${i}]`);
  });
}

/** The `x5c` value for a chain (RFC 7515 §4.1.6). */
export function x5cFromChain(chain: readonly X509Certificate[]): string[] {
  return chain.map((c) => c.raw.toString('base64'));
}
