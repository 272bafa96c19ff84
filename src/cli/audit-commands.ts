import { createReadStream, createWriteStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Command } from 'commander';
import { verifyBundle } from '../audit/verify.js';
import { call } from './client.js';
import { CliError, EXIT } from './exit.js';

export function registerAuditCommands(program: Command): void {
  const audit = program.command('audit').description('export and verify the audit log (SPEC §6.5)');

  audit
    .command('export')
    .description('download an export bundle (ndjson) with an auditor certificate')
    .requiredOption('--cert <pem>', 'auditor certificate PEM')
    .requiredOption('--key <pem>', 'auditor private key PEM')
    .option('--url <url>', 'gateway URL', process.env['CASEBRIDGE_URL'] ?? 'https://127.0.0.1:8443')
    .option('--ca <pem>', 'CA bundle for the gateway certificate')
    .option('--start <n>', 'first entry index', '0')
    .option('--end <n>', 'end entry index (exclusive); default the latest checkpoint')
    .option('--messages', 'include message JWS (needs the export grant)')
    .option('--out <file>', 'where to write the bundle', 'audit-export.ndjson')
    .action(
      async (o: {
        cert: string;
        key: string;
        url: string;
        ca?: string;
        start: string;
        end?: string;
        messages?: boolean;
        out: string;
      }) => {
        const q = new URLSearchParams({ start: o.start, messages: String(o.messages === true) });
        if (o.end) q.set('end', o.end);
        const res = await call(
          { url: o.url, cert: o.cert, key: o.key, ...(o.ca ? { ca: o.ca } : {}) },
          'GET',
          `/v1/audit/export?${q}`,
        );
        if (res.status !== 200) {
          throw new CliError(
            EXIT.CHECK_FAILED,
            `the gateway answered ${res.status}: ${res.body.slice(0, 200)}`,
          );
        }
        await new Promise<void>((resolve, reject) => {
          const out = createWriteStream(o.out);
          out.on('error', reject);
          out.end(res.body, () => resolve());
        });
        process.stderr.write(`wrote ${o.out}\n`);
      },
    );

  audit
    .command('verify <bundle>')
    .description('verify an export bundle offline: tree, checkpoints, signatures, chains')
    .option('--no-signatures', 'skip the per-message signature and certificate checks')
    .option('--json', 'print the full report as JSON')
    .action(async (bundle: string, o: { signatures: boolean; json?: boolean }) => {
      const input = createReadStream(bundle);
      const opened = new Promise<void>((resolve, reject) => {
        input.once('open', () => resolve());
        input.once('error', reject);
      });
      try {
        await opened;
      } catch {
        throw new CliError(EXIT.USAGE, `cannot read ${bundle}`);
      }
      const lines = createInterface({ input, crlfDelay: Infinity });
      const report = await verifyBundle(lines, { checkSignatures: o.signatures });
      if (o.json) process.stdout.write(JSON.stringify(report, null, 2) + '\n');
      if (!report.ok) {
        const f = report.firstFailure;
        const where = f?.index === undefined ? '' : ` at entry ${f.index}`;
        throw new CliError(
          EXIT.CHECK_FAILED,
          `verification failed${where}: ${f?.reason ?? 'unknown'} ${f?.detail ?? ''}`.trim(),
        );
      }
      if (!o.json) {
        process.stdout.write(
          `ok: ${report.entries} entries, ${report.checkpoints} checkpoints, ${report.messages} messages verified\n`,
        );
      }
    });
}
