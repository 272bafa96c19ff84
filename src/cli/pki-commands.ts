/**
 * `casebridge init-dev` and `casebridge pki issue|revoke` (protocol §7). Failures are
 * thrown as CliError (exit 2 for usage, configuration or unusable input).
 */
import type { X509Certificate } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import {
  CRL_PEM_LABEL,
  DEFAULT_LEAF_DAYS,
  DEV_AGENCIES,
  DEV_GATEWAY_ID,
  DEV_PKCS12_PASSWORD,
  KEY_TYPES,
  ROLES,
  createCrl,
  devPkcs12Files,
  generateDevPki,
  isPkiError,
  issueCertificate,
  parseCrl,
  parsePemChain,
  pemBlocks,
  toPem,
  verifyCrlSignature,
  writeDevPki,
  type KeyType,
  type RevokedEntry,
  type Role,
} from '../pki/index.js';
import { CliError, EXIT } from './exit.js';

const DAY_MS = 86_400_000;
const AGENCY_ID = /^[A-Z]{2}(-[A-Z0-9]{1,12}){1,4}$/; // protocol §1.3
const DEFAULT_CRL_DAYS = 30;

function usage(reason: string): never {
  throw new CliError(EXIT.USAGE, reason);
}

function readText(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    usage(`cannot read ${what} ${path}`);
  }
}

function positiveInt(v: string, what: string): number {
  if (!/^\d+$/.test(v) || Number(v) < 1) usage(`${what} must be a positive integer`);
  return Number(v);
}

/** Replaces `path` atomically, so a gateway reloading it never reads half a file. */
function writeAtomic(path: string, text: string, mode: number): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, text, { mode });
  chmodSync(tmp, mode);
  renameSync(tmp, path);
}

/** Turns PKI errors on user-supplied files into one-line usage errors. */
function guarded<A extends unknown[]>(fn: (...args: A) => void): (...args: A) => void {
  return (...args: A) => {
    try {
      fn(...args);
    } catch (e) {
      if (isPkiError(e)) usage(e.message);
      if (e instanceof RangeError) usage(e.message);
      throw e;
    }
  };
}

export function registerPkiCommands(program: Command): void {
  program
    .command('init-dev')
    .description(
      'write a development PKI and sample registry (two countries, an intermediate, five agencies)',
    )
    .option('--out <dir>', 'output directory', './certs')
    .option('--if-missing', 'do nothing when <out>/registry.json exists')
    .option('--force', 'overwrite an existing PKI')
    .option('--gateway-id <id>', 'the gateway id (Subject O of its certificate)', DEV_GATEWAY_ID)
    .action(
      guarded((o: { out: string; ifMissing?: boolean; force?: boolean; gatewayId: string }) => {
        const out = resolve(o.out);
        if (o.ifMissing && existsSync(join(out, 'registry.json'))) {
          process.stderr.write(`casebridge: ${out}/registry.json exists; init-dev skipped\n`);
          return;
        }
        if (!AGENCY_ID.test(o.gatewayId))
          usage('--gateway-id must look like an agency id, e.g. GW-DEMO');
        const present = ['registry.json', 'trust.pem', 'ca'].filter((f) =>
          existsSync(join(out, f)),
        );
        if (present.length > 0 && !o.force)
          usage(`${out} already holds a PKI (${present.join(', ')}); use --force to replace it`);
        const files = generateDevPki({ gatewayId: o.gatewayId });
        writeDevPki(out, files);
        const p12 = devPkcs12Files(files);
        writeDevPki(out, p12);
        const agencies = DEV_AGENCIES.map((a) => a.id).join(', ');
        process.stdout.write(
          [
            `wrote a development PKI to ${out} (${Object.keys(files).length + Object.keys(p12).length} files)`,
            `  trust anchors  trust.pem (CN and VN roots); CAs in ca/ (cn-south is an intermediate)`,
            `  CRLs           crl.pem (empty, one per CA)`,
            `  gateway        gateway/gateway.crt.pem, gateway.key.pem (O=${o.gatewayId}, localhost/127.0.0.1)`,
            `  agencies       agencies/<id>/{system,officer,auditor}.{crt,key}.pem for ${agencies}`,
            `  browsers       agencies/<id>/<role>.p12 (password "${DEV_PKCS12_PASSWORD}"; README: importing)`,
            `  audit log key  log/log.key.pem (Ed25519), log/log.pub.pem`,
            `  registry       registry.json`,
            `private keys are mode 0600; for development only`,
            '',
          ].join('\n'),
        );
      }),
    );

  const pki = program
    .command('pki')
    .description('issue certificates and revoke them (protocol §1.1, §1.5)');

  pki
    .command('issue')
    .description('issue an agency, officer, auditor or gateway certificate')
    .requiredOption('--ca-cert <pem>', 'issuing CA certificate (PEM; its chain may follow)')
    .requiredOption('--ca-key <pem>', 'issuing CA private key (PEM)')
    .requiredOption('--agency <id>', 'Subject O: agency id (or the gateway id)')
    .requiredOption('--role <role>', `Subject OU: ${ROLES.join(', ')}`)
    .option('--name <cn>', 'Subject CN: display name or officer id')
    .option('--key-type <type>', KEY_TYPES.join(', '), 'ec-p256')
    .option('--days <n>', 'validity in days', String(DEFAULT_LEAF_DAYS))
    .option('--out <dir>', 'output directory', '.')
    .option('--force', 'overwrite existing files')
    .action(
      guarded(
        (o: {
          caCert: string;
          caKey: string;
          agency: string;
          role: string;
          name?: string;
          keyType: string;
          days: string;
          out: string;
          force?: boolean;
        }) => {
          if (!AGENCY_ID.test(o.agency))
            usage('--agency must match ^[A-Z]{2}(-[A-Z0-9]{1,12}){1,4}$');
          if (!(ROLES as readonly string[]).includes(o.role))
            usage(`--role must be one of ${ROLES.join(', ')}`);
          if (!(KEY_TYPES as readonly string[]).includes(o.keyType))
            usage(`--key-type must be one of ${KEY_TYPES.join(', ')}`);
          const role = o.role as Role;
          const name = o.name ?? `${role} ${o.agency}`;
          if (name.trim() === '' || name.length > 128) usage('--name must hold 1..128 characters');
          const days = positiveInt(o.days, '--days');
          const now = new Date();
          const issued = issueCertificate({
            caCert: readText(o.caCert, 'CA certificate'),
            caKey: readText(o.caKey, 'CA key'),
            agency: o.agency,
            role,
            name,
            keyType: o.keyType as KeyType,
            notBefore: new Date(now.getTime() - 5 * 60_000),
            notAfter: new Date(now.getTime() + days * DAY_MS),
          });
          const base = (o.name ? slug(o.name) : '') || role;
          const out = resolve(o.out);
          mkdirSync(out, { recursive: true });
          const certPath = join(out, `${base}.crt.pem`);
          const keyPath = join(out, `${base}.key.pem`);
          if (!o.force && (existsSync(certPath) || existsSync(keyPath)))
            usage(`${certPath} exists; use --force to replace it`);
          writeAtomic(keyPath, issued.keyPem, 0o600);
          writeAtomic(certPath, issued.chainPem, 0o644);
          process.stdout.write(`wrote ${certPath} (serial ${issued.serialHex}) and ${keyPath}\n`);
        },
      ),
    );

  pki
    .command('revoke')
    .description("add a certificate to its CA's CRL (other CAs' CRLs in the file are kept)")
    .requiredOption('--ca-cert <pem>', 'the CA that issued the certificate')
    .requiredOption('--ca-key <pem>', "the CA's private key")
    .requiredOption('--cert <pem>', 'the certificate to revoke (first PEM block)')
    .option('--crl <pem>', 'existing CRL file to start from (default: --out, if it exists)')
    .requiredOption('--out <pem>', 'CRL file to write')
    .option('--days <n>', 'days until nextUpdate', String(DEFAULT_CRL_DAYS))
    .action(
      guarded(
        (o: {
          caCert: string;
          caKey: string;
          cert: string;
          crl?: string;
          out: string;
          days: string;
        }) => {
          const caPem = readText(o.caCert, 'CA certificate');
          const ca = parsePemChain(caPem)[0]!;
          const target = parsePemChain(readText(o.cert, 'certificate'))[0]!;
          if (!target.checkIssued(ca) || !target.verify(ca.publicKey))
            usage('the certificate was not issued by that CA');
          const days = positiveInt(o.days, '--days');
          const source = o.crl ?? (existsSync(o.out) ? o.out : undefined);
          const revoked = revokeInto(source ? readText(source, 'CRL') : '', {
            ca,
            caPem,
            caKey: readText(o.caKey, 'CA key'),
            target,
            now: new Date(),
            days,
          });
          writeAtomic(o.out, revoked.pem, 0o644);
          process.stdout.write(
            `revoked serial ${revoked.serialHex}; ${o.out} holds ${revoked.blocks} CRL(s), this CA's lists ${revoked.count}\n`,
          );
        },
      ),
    );
}

function slug(s: string): string {
  return s
    .toLowerCase()
    .replace(/[^a-z0-9._-]+/g, '-')
    .replace(/^[-.]+|-+$/g, '')
    .slice(0, 64);
}

/**
 * Replaces (or appends) `ca`'s CRL block in `existingPem` with one that also lists
 * `target`; thisUpdate moves forward and the CRL number goes up (RFC 5280 §5.2.3).
 */
function revokeInto(
  existingPem: string,
  a: {
    ca: X509Certificate;
    caPem: string;
    caKey: string;
    target: X509Certificate;
    now: Date;
    days: number;
  },
): { pem: string; serialHex: string; blocks: number; count: number } {
  const blocks = pemBlocks(existingPem, CRL_PEM_LABEL).map((der) => ({ der, crl: parseCrl(der) }));
  const mine = blocks.findIndex((b) => verifyCrlSignature(b.crl, a.ca));
  const previous = mine >= 0 ? blocks[mine]!.crl : undefined;
  const serialHex = parseSerial(a.target);
  const entries: RevokedEntry[] = [...(previous?.revoked ?? [])];
  if (!entries.some((e) => e.serialHex === serialHex)) entries.push({ serialHex, at: a.now });
  const floor = previous ? previous.thisUpdate.getTime() + 1000 : 0;
  const thisUpdate = new Date(Math.max(a.now.getTime(), floor));
  const bySeconds = BigInt(Math.floor(thisUpdate.getTime() / 1000));
  const crlNumber =
    previous?.crlNumber !== undefined && previous.crlNumber >= bySeconds
      ? previous.crlNumber + 1n
      : bySeconds;
  const pem = createCrl({
    caCert: a.caPem,
    caKey: a.caKey,
    revoked: entries,
    thisUpdate,
    nextUpdate: new Date(thisUpdate.getTime() + a.days * DAY_MS),
    crlNumber,
  });
  const texts = blocks.map((b) => toPem(CRL_PEM_LABEL, b.der));
  if (mine >= 0) texts[mine] = pem;
  else texts.push(pem);
  return { pem: texts.join(''), serialHex, blocks: texts.length, count: entries.length };
}

function parseSerial(cert: X509Certificate): string {
  return cert.serialNumber.toLowerCase().replace(/^0+/, '') || '0';
}
