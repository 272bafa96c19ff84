import type { Command } from 'commander';
import { startGateway } from '../app.js';
import { DEV_PKI_DIR, loadConfig } from '../config/index.js';

/** The dev-PKI paths the README and the start banner refer to. */
function tryItBanner(url: string): string {
  const a = `${DEV_PKI_DIR}/agencies/CN-GX-CZ`;
  const b = `${DEV_PKI_DIR}/agencies/VN-LS`;
  return [
    '',
    'casebridge is running. Try it (in another terminal):',
    `  npx casebridge submit examples/evidence.request.json --fresh --url ${url} \\`,
    `    --cert ${a}/system.crt.pem --key ${a}/system.key.pem`,
    `  npx casebridge inbox --url ${url} --cert ${b}/officer.crt.pem --key ${b}/officer.key.pem`,
    '',
  ].join('\n');
}

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('run the gateway, configured by CASEBRIDGE_* environment variables (protocol §8)')
    .action(async () => {
      const config = loadConfig();
      const gw = await startGateway({ config });
      if (!process.env['CASEBRIDGE_TLS_CERT']) process.stderr.write(tryItBanner(gw.url) + '\n');
      process.on('SIGHUP', () => {
        gw.reloadCrl().catch((e: unknown) => {
          process.stderr.write(
            `casebridge: CRL reload failed, previous CRLs kept: ${(e as Error).message}\n`,
          );
        });
      });
      let stopping = false;
      const stop = () => {
        if (stopping) return;
        stopping = true;
        gw.close()
          .then(() => process.exit(0))
          .catch(() => process.exit(1));
      };
      process.on('SIGTERM', stop);
      process.on('SIGINT', stop);
    });
}
