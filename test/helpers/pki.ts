/**
 * Test PKI fixtures.
 *
 * - `getTestPki()` — the `init-dev` PKI (protocol §7 layout), generated once per test
 *   process into a temp dir and removed at exit. `files['agencies/CN-GX-CZ/officer.crt.pem']`
 *   is the text; `path(rel)` its absolute path. Leaf `.crt.pem` files hold leaf + intermediates.
 * - `issueTestCert(opts)` — one special certificate: expired, not yet valid, from an
 *   untrusted root, a CA posing as a leaf, another key type. Each call makes a new one.
 * - `testTrustStore(opts)` — a TrustStore over the test anchors, CRLs and registry.
 *
 * Agencies: CN-GX-CZ (CN root), CN-GD and MO-PJ (cn-south intermediate),
 * VN-LS and VN-CB (VN root); gateway id GW-DEMO.
 */
import type { X509Certificate } from 'node:crypto';
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  TrustStore,
  createRootCa,
  generateDevPki,
  issueCertificate,
  parsePemChain,
  writeDevPki,
  type DevPkiFiles,
  type IssuedCertificate,
  type KeyType,
  type Role,
  type TrustStoreOptions,
} from '../../src/pki/index.js';

export interface TestPki {
  /** Absolute directory holding the files. */
  dir: string;
  /** Relative path → content, as written. */
  files: DevPkiFiles;
  /** Absolute path of a file of the PKI. */
  path(rel: string): string;
  /** Content of a file; throws if there is no such file. */
  text(rel: string): string;
}

let pki: Promise<TestPki> | undefined;
let pkiDir: string | undefined;
let untrustedRoot: IssuedCertificate | undefined;

/** The absolute path of a file of the test PKI, once `getTestPki()` has made it. */
export function testPkiPath(rel: string): string {
  if (pkiDir === undefined) throw new Error('the test PKI is made by getTestPki() first');
  return join(pkiDir, rel);
}

export function getTestPki(): Promise<TestPki> {
  pki ??= Promise.resolve().then(() => {
    const dir = mkdtempSync(join(tmpdir(), 'casebridge-pki-'));
    pkiDir = dir;
    const files = generateDevPki({ gatewayId: 'GW-DEMO' });
    writeDevPki(dir, files);
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    return {
      dir,
      files,
      path: (rel: string) => join(dir, rel),
      text(rel: string): string {
        const t = files[rel];
        if (t === undefined) throw new Error(`no test PKI file ${rel}`);
        return t;
      },
    };
  });
  return pki;
}

export type TestIssuer = 'cn-root' | 'cn-south' | 'vn-root' | 'untrusted';

export interface TestCertOptions {
  /** Which CA signs: a dev CA, or a root that is in no trust bundle. Default 'cn-root'. */
  issuer?: TestIssuer;
  agency?: string;
  role?: Role;
  name?: string;
  keyType?: KeyType;
  notBefore?: Date;
  notAfter?: Date;
  isCa?: boolean;
}

export interface TestCert extends IssuedCertificate {
  /** Parsed `chainPem`: leaf first. */
  chain: X509Certificate[];
  cert: X509Certificate;
  key: KeyObject;
}

/** Issues one certificate; defaults: CN-GX-CZ `system` from the CN root, EC P-256, valid now. */
export async function issueTestCert(opts: TestCertOptions = {}): Promise<TestCert> {
  const p = await getTestPki();
  const issuer = opts.issuer ?? 'cn-root';
  let caCert: string;
  let caKey: string;
  if (issuer === 'untrusted') {
    untrustedRoot ??= createRootCa({ name: 'Untrusted Test Root', country: 'CN' });
    caCert = untrustedRoot.certPem;
    caKey = untrustedRoot.keyPem;
  } else {
    caCert = p.text(`ca/${issuer}.crt.pem`);
    caKey = p.text(`ca/${issuer}.key.pem`);
  }
  const issued = issueCertificate({
    caCert,
    caKey,
    agency: opts.agency ?? 'CN-GX-CZ',
    role: opts.role ?? 'system',
    name: opts.name ?? 'Test Certificate',
    ...(opts.keyType ? { keyType: opts.keyType } : {}),
    ...(opts.notBefore ? { notBefore: opts.notBefore } : {}),
    ...(opts.notAfter ? { notAfter: opts.notAfter } : {}),
    ...(opts.isCa ? { isCa: true } : {}),
  });
  const chain = parsePemChain(issued.chainPem);
  return { ...issued, chain, cert: chain[0]!, key: createPrivateKey(issued.keyPem) };
}

/** A TrustStore like the gateway's: test anchors and CRLs, registry agencies, gateway GW-DEMO. */
export async function testTrustStore(
  overrides: Partial<TrustStoreOptions> = {},
): Promise<TrustStore> {
  const p = await getTestPki();
  const registry = JSON.parse(p.text('registry.json')) as { agencies: Array<{ id: string }> };
  const ids = new Set(registry.agencies.map((a) => a.id));
  return new TrustStore({
    anchorsPem: p.text('trust.pem'),
    crlPem: p.text('crl.pem'),
    isKnownOrg: (o) => ids.has(o),
    gatewayId: 'GW-DEMO',
    ...overrides,
  });
}
