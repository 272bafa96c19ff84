/**
 * The unauthenticated-certificate flood (issue: a peer presenting a fresh, large
 * self-signed certificate on every connection): certificates of about 60 KB, each
 * with a new serial, so no two share a DER.
 */
import { randomBytes } from 'node:crypto';
import { connect } from 'node:tls';
import {
  algorithmIdentifier,
  bitString,
  embed,
  explicit,
  octets,
  oid,
  seq,
  set,
  time,
  toDer,
  uint,
  utf8,
} from '../../src/pki/asn1.js';
import { algorithmForKey, generateKey, privateKeyPem, signWith } from '../../src/pki/keys.js';
import { toPem } from '../../src/pki/pem.js';
import { OID } from '../../src/pki/x509.js';

/** A private-use OID (example arc) for the padding extension. */
const PADDING_OID = '1.3.6.1.4.1.32473.1';
import type { Gateway } from '../../src/app.js';

export interface FloodCerts {
  keyPem: string;
  /** Size of each certificate's DER. */
  bytes: number;
  next(): string;
}

/**
 * A factory of fresh, properly self-signed ~60 KB certificates sharing one key:
 * Subject and Issuer `O=CN-GX-CZ, OU=system, CN=flood` (a registered agency, so only
 * the missing chain refuses it) and the bulk in an opaque non-critical extension.
 */
export function floodCertificates(targetBytes = 60 * 1024): FloodCerts {
  const { privateKey, publicKey } = generateKey('ec-p256');
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  const alg = algorithmForKey(privateKey);
  const subject = seq(
    [
      [OID.organizationName, 'CN-GX-CZ'],
      [OID.organizationalUnitName, 'system'],
      [OID.commonName, 'flood'],
    ].map(([o, v]) => set([seq([oid(o!), utf8(v!)])])),
  );
  const padding = seq([oid(PADDING_OID), octets(Buffer.alloc(targetBytes - 600, 0x5a))]);
  const now = Date.now();
  const validity = seq([time(new Date(now - 3_600_000)), time(new Date(now + 86_400_000))]);
  let bytes = 0;
  const next = (): string => {
    const serial = randomBytes(16);
    serial[0] = (serial[0]! & 0x7f) | 0x01;
    const tbs = toDer(
      seq([
        explicit(0, uint(2)),
        uint(serial),
        algorithmIdentifier(alg),
        subject,
        validity,
        subject,
        embed(spki),
        explicit(3, seq([padding])),
      ]),
    );
    const der = toDer(
      seq([embed(tbs), algorithmIdentifier(alg), bitString(signWith(alg, privateKey, tbs))]),
    );
    bytes = der.length;
    return toPem('CERTIFICATE', der);
  };
  next();
  return {
    keyPem: privateKeyPem(privateKey),
    get bytes() {
      return bytes;
    },
    next,
  };
}

/**
 * One connection with `cert`: TLS handshake, `GET /v1/inbox`, the status answered
 * (401 for an untrusted certificate), then close.
 */
export function floodOnce(gw: Gateway, cert: string, keyPem: string): Promise<number> {
  const url = new URL(gw.url);
  return new Promise((resolve, reject) => {
    const s = connect({
      host: url.hostname,
      port: Number(url.port),
      servername: 'localhost',
      rejectUnauthorized: false,
      cert,
      key: keyPem,
    });
    let text = '';
    s.on('secureConnect', () =>
      s.write('GET /v1/inbox HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n'),
    );
    s.on('data', (d: Buffer) => (text += d.toString('latin1')));
    s.on('error', reject);
    s.on('close', () => resolve(Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0)));
  });
}

/** `total` flood connections, `parallel` at a time; returns how many got each status. */
export async function flood(
  gw: Gateway,
  certs: FloodCerts,
  total: number,
  parallel = 8,
): Promise<Map<number, number>> {
  const statuses = new Map<number, number>();
  let started = 0;
  const worker = async () => {
    while (started < total) {
      started++;
      const status = await floodOnce(gw, certs.next(), certs.keyPem);
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  return statuses;
}
