import { createWriteStream, existsSync, readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { describeFailure, exitCodeFor, summarize, verifyBundleFile } from '../audit/bundle-file.js';
import type { VerifyOptions } from '../audit/verify.js';
import { attempt, connect } from './client.js';
import { CliError, EXIT } from './exit.js';

export function registerAuditCommands(program: Command): void {
  const audit = program
    .command('audit')
    .description('export and verify the audit log (protocol §6.5)');

  audit
    .command('export')
    .description('download an export bundle (ndjson) with an auditor certificate')
    .requiredOption('--cert <pem>', 'auditor certificate PEM')
    .requiredOption('--key <pem>', 'auditor private key PEM')
    .option(
      '--url <url>',
      'gateway URL (default CASEBRIDGE_URL, else CASEBRIDGE_HOST:CASEBRIDGE_PORT)',
    )
    .option('--ca <pem>', 'CA bundle for the gateway certificate')
    .option('--start <n>', 'first entry index', '0')
    .option('--end <n>', 'end entry index (exclusive); default the latest checkpoint')
    .option('--messages', 'include message JWS (needs the export grant)')
    .option('--out <file>', 'where to write the bundle', 'audit-export.ndjson')
    .action(
      async (o: {
        cert: string;
        key: string;
        url?: string;
        ca?: string;
        start: string;
        end?: string;
        messages?: boolean;
        out: string;
      }) => {
        const start = Number(o.start);
        const end = o.end === undefined ? undefined : Number(o.end);
        const client = connect(o);
        const bundle = await attempt(
          () =>
            client.exportBundle({
              start,
              ...(end === undefined ? {} : { end }),
              messages: o.messages === true,
            }),
          client,
        );
        await new Promise<void>((resolve, reject) => {
          const out = createWriteStream(o.out);
          out.on('error', reject);
          out.end(bundle, () => resolve());
        });
        process.stderr.write(`wrote ${o.out}\n`);
      },
    );

  audit
    .command('verify <bundle>')
    .description(
      'verify an export bundle offline against your own log key and trust anchors (exit 0 only when all holds)',
    )
    .option(
      '--vkey <vkey|file>',
      'the log key you trust (signed-note vkey, or a file holding it); default CASEBRIDGE_AUDIT_VKEY',
    )
    .option('--trust <file>', 'the CA certificates (PEM) you trust for message and receipt chains')
    .option(
      '--trust-bundle-key',
      "use the bundle's own log key (the result is UNPINNED and exits 1)",
    )
    .option(
      '--trust-bundle-anchors',
      "use the bundle's own trust anchors (the result is UNPINNED and exits 1)",
    )
    .option(
      '--checkpoint <file>',
      'a checkpoint kept from an earlier audit (repeatable)',
      collect,
      [],
    )
    .option('--no-signatures', 'skip the per-message signature and certificate checks')
    .option('--json', 'print the full report as JSON')
    .action(async (bundle: string, o: VerifyFlags) => {
      if (!existsSync(bundle)) throw new CliError(EXIT.USAGE, `cannot read ${bundle}`);
      const report = await verifyBundleFile(bundle, verifyOptions(o));
      if (o.json) process.stdout.write(JSON.stringify(report, null, 2) + '\n');
      else process.stdout.write(summarize(report) + '\n');
      if (exitCodeFor(report) !== EXIT.OK) {
        const f = report.firstFailure;
        throw new CliError(
          EXIT.CHECK_FAILED,
          f === undefined
            ? 'UNPINNED: the result rests on the key or anchors the bundle carries'
            : `verification failed: ${describeFailure(f)}`,
        );
      }
    });
}

interface VerifyFlags {
  vkey?: string;
  trust?: string;
  trustBundleKey?: boolean;
  trustBundleAnchors?: boolean;
  checkpoint: string[];
  signatures: boolean;
  json?: boolean;
}

/** protocol §6.5: the auditor pins the log key and the anchors; a bundle never vouches for itself. */
function verifyOptions(o: VerifyFlags): VerifyOptions {
  const given = o.vkey ?? process.env['CASEBRIDGE_AUDIT_VKEY'];
  const vkey = given === undefined || given.trim() === '' ? undefined : vkeyFrom(given.trim());
  if (vkey === undefined && o.trustBundleKey !== true) {
    throw new CliError(
      EXIT.USAGE,
      'no log key: pass --vkey KEY|FILE or set CASEBRIDGE_AUDIT_VKEY with the key you got from outside the bundle (--trust-bundle-key only for a first look)',
    );
  }
  if (o.signatures && o.trust === undefined && o.trustBundleAnchors !== true) {
    throw new CliError(
      EXIT.USAGE,
      'no trust anchors: pass --trust FILE with the CA certificates you trust (or --no-signatures; --trust-bundle-anchors only for a first look)',
    );
  }
  return {
    checkSignatures: o.signatures,
    ...(vkey !== undefined ? { vkey } : { trustBundleKey: true }),
    ...(o.trust !== undefined
      ? { trustAnchors: pemCertificates(readOrUsage(o.trust, 'trust bundle')) }
      : o.trustBundleAnchors === true
        ? { trustBundleAnchors: true }
        : {}),
    ...(o.checkpoint.length > 0
      ? { trustedCheckpoints: o.checkpoint.map((f) => readOrUsage(f, 'checkpoint')) }
      : {}),
  };
}

/** `--vkey` takes the key itself or a file holding it: a value naming an existing file is read. */
function vkeyFrom(value: string): string {
  if (existsSync(value)) return readOrUsage(value, 'vkey file').trim();
  return value;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

function readOrUsage(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    throw new CliError(EXIT.USAGE, `cannot read ${what} ${path}`);
  }
}

function pemCertificates(pem: string): string[] {
  return pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
}
