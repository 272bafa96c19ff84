/**
 * The development PKI of `casebridge init-dev` (protocol §7): two countries' roots, an
 * intermediate, the gateway's certificate, three certificates per sample agency, a
 * log key and a sample registry. Pure: returns file contents by relative path;
 * `writeDevPki` puts them on disk. All names are synthetic.
 */
import { generateKeyPairSync } from 'node:crypto';
import { dataKeyPem } from '../retention/keys.js';
import { createCrl } from './crl.js';
import {
  createIntermediateCa,
  createRootCa,
  issueCertificate,
  type IssuedCertificate,
} from './issue.js';
import { toPkcs12 } from './pkcs12.js';
import type { Role } from './types.js';

const DAY_MS = 86_400_000;
const LEAF_DAYS = 730;
const CA_DAYS = 3650;
/** Backdating absorbs small clock differences between the machines of a demo. */
const BACKDATE_MS = 60 * 60_000;

export const DEV_GATEWAY_ID = 'GW-DEMO';

interface DevAgency {
  id: string;
  country: string;
  name: string;
  ca: 'cn-root' | 'cn-south' | 'vn-root';
}

export const DEV_AGENCIES: readonly DevAgency[] = [
  {
    id: 'CN-GX-CZ',
    country: 'CN',
    name: 'Chongzuo Municipal Public Security Bureau',
    ca: 'cn-root',
  },
  {
    id: 'CN-GD',
    country: 'CN',
    name: 'Guangdong Provincial Public Security Department',
    ca: 'cn-south',
  },
  { id: 'MO-PJ', country: 'MO', name: 'Macao Judiciary Police', ca: 'cn-south' },
  { id: 'VN-LS', country: 'VN', name: 'Lang Son Provincial Police', ca: 'vn-root' },
  { id: 'VN-CB', country: 'VN', name: 'Cao Bang Provincial Police', ca: 'vn-root' },
];

const DEV_AGREEMENTS: ReadonlyArray<{ id: string; parties: [string, string] }> = [
  { id: 'CN-GX-CZ-VN-LS-border-2021', parties: ['CN-GX-CZ', 'VN-LS'] },
  { id: 'CN-GX-CZ-VN-CB-border-2021', parties: ['CN-GX-CZ', 'VN-CB'] },
  { id: 'CN-GD-MO-PJ-2021', parties: ['CN-GD', 'MO-PJ'] },
];

const ALL_TYPES = [
  'evidence.request',
  'evidence.transfer',
  'funds.freeze',
  'suspect.handover',
  'status.update',
];
const LEAF_ROLES: ReadonlyArray<Exclude<Role, 'gateway'>> = ['system', 'officer', 'auditor'];

export interface DevPkiOptions {
  now?: Date;
  gatewayId?: string;
}

/** Relative path → file content. Paths ending in `.key.pem` are private keys. */
export type DevPkiFiles = Record<string, string>;

function displayName(role: Exclude<Role, 'gateway'>, agency: string): string {
  switch (role) {
    case 'system':
      return `Case System ${agency}`;
    case 'officer':
      return `Officer 01 ${agency}`;
    case 'auditor':
      return `Auditor 01 ${agency}`;
  }
}

export function generateDevPki(options: DevPkiOptions = {}): DevPkiFiles {
  const now = options.now ?? new Date();
  const gatewayId = options.gatewayId ?? DEV_GATEWAY_ID;
  const notBefore = new Date(now.getTime() - BACKDATE_MS);
  const caValidity = { notBefore, notAfter: new Date(now.getTime() + CA_DAYS * DAY_MS) };
  const leafValidity = { notBefore, notAfter: new Date(now.getTime() + LEAF_DAYS * DAY_MS) };

  const cnRoot = createRootCa({
    name: 'casebridge Dev Root CA CN',
    org: 'casebridge dev CN',
    country: 'CN',
    ...caValidity,
  });
  const vnRoot = createRootCa({
    name: 'casebridge Dev Root CA VN',
    org: 'casebridge dev VN',
    country: 'VN',
    ...caValidity,
  });
  const cnSouth = createIntermediateCa({
    caCert: cnRoot.certPem,
    caKey: cnRoot.keyPem,
    name: 'casebridge Dev South Region CA CN',
    org: 'casebridge dev CN',
    country: 'CN',
    ...caValidity,
  });
  const cas: Record<DevAgency['ca'], IssuedCertificate> = {
    'cn-root': cnRoot,
    'cn-south': cnSouth,
    'vn-root': vnRoot,
  };

  const files: DevPkiFiles = {};
  for (const [id, ca] of Object.entries(cas)) {
    files[`ca/${id}.crt.pem`] = ca.certPem;
    files[`ca/${id}.key.pem`] = ca.keyPem;
  }
  files['trust.pem'] = cnRoot.certPem + vnRoot.certPem;
  files['crl.pem'] = Object.values(cas)
    .map((ca) =>
      createCrl({
        caCert: ca.certPem,
        caKey: ca.keyPem,
        thisUpdate: notBefore,
        nextUpdate: leafValidity.notAfter,
      }),
    )
    .join('');

  const gateway = issueCertificate({
    caCert: cnRoot.certPem,
    caKey: cnRoot.keyPem,
    agency: gatewayId,
    role: 'gateway',
    name: `casebridge gateway ${gatewayId}`,
    ...leafValidity,
  });
  files['gateway/gateway.crt.pem'] = gateway.chainPem;
  files['gateway/gateway.key.pem'] = gateway.keyPem;
  // The gateway operator's own auditor (O = gateway id): sees every entry's metadata.
  const operator = issueCertificate({
    caCert: cnRoot.certPem,
    caKey: cnRoot.keyPem,
    agency: gatewayId,
    role: 'auditor',
    name: `Auditor 01 ${gatewayId}`,
    ...leafValidity,
  });
  files['operator/auditor.crt.pem'] = operator.chainPem;
  files['operator/auditor.key.pem'] = operator.keyPem;
  // Wraps the epoch keys of message bytes at rest (CASEBRIDGE_DATA_KEY).
  files['data/data.key.pem'] = dataKeyPem();

  const log = generateKeyPairSync('ed25519');
  files['log/log.key.pem'] = log.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  files['log/log.pub.pem'] = log.publicKey.export({ type: 'spki', format: 'pem' }).toString();

  for (const agency of DEV_AGENCIES) {
    const ca = cas[agency.ca];
    for (const role of LEAF_ROLES) {
      const issued = issueCertificate({
        caCert: ca.certPem,
        caKey: ca.keyPem,
        agency: agency.id,
        role,
        name: displayName(role, agency.id),
        ...leafValidity,
      });
      files[`agencies/${agency.id}/${role}.crt.pem`] = issued.chainPem;
      files[`agencies/${agency.id}/${role}.key.pem`] = issued.keyPem;
    }
  }

  const registry = {
    gateway: { id: gatewayId },
    agencies: DEV_AGENCIES.map(({ id, country, name }) => ({ id, country, name })),
    agreements: DEV_AGREEMENTS.map(({ id, parties }) => ({
      id,
      parties,
      types: ALL_TYPES,
      validFrom: '2021-01-01T00:00:00Z',
      validUntil: '2031-01-01T00:00:00Z',
    })),
  };
  files['registry.json'] = `${JSON.stringify(registry, null, 2)}\n`;
  return files;
}

/** Files holding a private key: written 0600. */
export const isPrivateKeyPath = (rel: string): boolean =>
  rel.endsWith('.key.pem') || rel.endsWith('.p12');

/** The password of every dev `.p12` (protocol §10); these files are for development only. */
export const DEV_PKCS12_PASSWORD = 'casebridge';

/**
 * Each agency certificate of a dev PKI (system, officer, auditor) with its key as
 * `agencies/<id>/<role>.p12`, for importing into a browser.
 */
export function devPkcs12Files(files: DevPkiFiles): Record<string, Buffer> {
  const out: Record<string, Buffer> = {};
  for (const agency of DEV_AGENCIES) {
    for (const role of LEAF_ROLES) {
      const base = `agencies/${agency.id}/${role}`;
      const cert = files[`${base}.crt.pem`];
      const key = files[`${base}.key.pem`];
      if (cert === undefined || key === undefined) continue;
      out[`${base}.p12`] = toPkcs12(cert, key, {
        password: DEV_PKCS12_PASSWORD,
        friendlyName: `casebridge dev ${role} ${agency.id}`,
      });
    }
  }
  return out;
}
