/**
 * Builds the browser console into dist/console (run by `npm run build` after tsc):
 * one ES module bundle, one stylesheet and the page. Everything the page loads is
 * in that directory, so nothing comes from another origin (protocol §10).
 */
import { copyFileSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const web = `${root}src/console/web/`;
const out = `${root}dist/console/`;

mkdirSync(out, { recursive: true });
await build({
  entryPoints: [
    { in: `${web}main.ts`, out: 'app' },
    { in: `${web}app.css`, out: 'app' },
  ],
  bundle: true,
  format: 'esm',
  target: ['chrome115', 'firefox128', 'safari17'],
  outdir: out,
  minify: true,
  legalComments: 'none',
  logLevel: 'warning',
});
copyFileSync(`${web}index.html`, `${out}index.html`);

// The same verification code as one module for the Node tests (Node has WebCrypto too);
// it is never served.
await build({
  entryPoints: [{ in: `${web}verify.ts`, out: 'verify' }],
  bundle: true,
  format: 'esm',
  platform: 'neutral',
  target: 'es2022',
  outdir: `${root}dist/console-lib/`,
  logLevel: 'warning',
});
