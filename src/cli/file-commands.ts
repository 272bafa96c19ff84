/**
 * protocol §7 and §9 on the command line: `submit … --attach FILE…` hashes and
 * uploads the exhibits, fills in the transfer's items and lets `submit` sign and
 * send it; `fetch <id> --out DIR` downloads every exhibit of a transfer, resuming
 * partial downloads, and exits 1 unless every hash matches.
 */
import { mkdtempSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import type { Command } from 'commander';
import {
  defaultStateFile,
  downloadEvidence,
  FileTransferError,
  hashFile,
  uploadEvidence,
  type FileClientOptions,
} from '../files/client.js';
import { parseStrictJson } from '../schema/index.js';
import { attempt, connect, defaultCa, defaultUrl } from './client.js';
import { CliError, EXIT } from './exit.js';

interface ConnOpts {
  url?: string;
  cert: string;
  key: string;
  ca?: string;
}

function readOrUsage(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    throw new CliError(EXIT.USAGE, `cannot read ${what} ${path}`);
  }
}

function clientOptions(o: ConnOpts, label: string): FileClientOptions {
  const ca = o.ca ?? defaultCa();
  const onProgress = progress(label);
  return {
    url: o.url ?? defaultUrl(),
    cert: readOrUsage(o.cert, 'certificate'),
    key: readOrUsage(o.key, 'key'),
    ...(ca === undefined ? {} : { ca: readOrUsage(ca, 'CA bundle') }),
    stateFile: process.env['CASEBRIDGE_UPLOAD_STATE'] ?? defaultStateFile(),
    ...(onProgress === undefined ? {} : { onProgress }),
  };
}

/** Progress on stderr, only on a terminal. */
function progress(label: string): ((done: number, total: number) => void) | undefined {
  if (!process.stderr.isTTY) return undefined;
  let last = 0;
  return (done, total) => {
    const now = Date.now();
    if (now - last < 200 && done < total) return;
    last = now;
    const pct = total === 0 ? 100 : Math.floor((done / total) * 100);
    const mib = (n: number) => (n / 1048576).toFixed(1);
    process.stderr.write(`\r${label} ${String(pct).padStart(3)}% ${mib(done)}/${mib(total)} MiB`);
    if (done >= total) process.stderr.write('\n');
  };
}

function transferError(e: unknown): never {
  if (e instanceof FileTransferError) {
    throw new CliError(EXIT.CHECK_FAILED, e.message);
  }
  throw e;
}

/**
 * Adds `--attach` to the `submit` command: before it runs, the attachments are
 * uploaded and the envelope it reads is the transfer with its items filled in,
 * in order (item k gets file k).
 */
function addAttach(submit: Command): void {
  submit.option('--attach <files...>', 'evidence files to upload and name in the transfer items');
  submit.hook('preAction', async (_cmd, action) => {
    const opts = action.opts<ConnOpts & { attach?: string[] }>();
    if (opts.attach === undefined || opts.attach.length === 0) return;
    const named = action.processedArgs[0] as string[];
    if (named.length !== 1) {
      throw new CliError(EXIT.USAGE, '--attach goes with one envelope file, not several');
    }
    const file = named[0]!;
    const text = readOrUsage(file, 'envelope');
    let env: { type?: string; body?: { items?: Record<string, unknown>[] } };
    try {
      env = parseStrictJson(text) as typeof env;
    } catch {
      throw new CliError(EXIT.USAGE, `${file}: --attach needs a JSON envelope`);
    }
    const items = env.body?.items;
    if (env.type !== 'evidence.transfer' || !Array.isArray(items)) {
      throw new CliError(EXIT.USAGE, `${file}: --attach needs an evidence.transfer envelope`);
    }
    if (items.length !== opts.attach.length) {
      throw new CliError(
        EXIT.USAGE,
        `${file} has ${items.length} items but ${opts.attach.length} files are attached`,
      );
    }
    for (const [k, path] of opts.attach.entries()) {
      const ref = await hashFile(path).catch(() => {
        throw new CliError(EXIT.USAGE, `cannot read ${path}`);
      });
      await uploadEvidence(clientOptions(opts, basename(path)), path, ref).catch(transferError);
      items[k] = { ...items[k], sha256: ref.sha256, size: ref.size };
    }
    const filled = join(mkdtempSync(join(tmpdir(), 'casebridge-attach-')), basename(file));
    writeFileSync(filled, JSON.stringify(env, null, 2));
    action.processedArgs[0] = [filled];
  });
}

export function registerFileCommands(program: Command): void {
  const submit = program.commands.find((c) => c.name() === 'submit');
  if (submit !== undefined) addAttach(submit);

  program
    .command('fetch <id>')
    .description('download every exhibit of a transfer, resume partial downloads, verify each hash')
    .requiredOption('--out <dir>', 'directory to write the files into (named by their sha256)')
    .requiredOption('--cert <pem>', 'client certificate (chain) PEM')
    .requiredOption('--key <pem>', 'client private key PEM (PKCS#8)')
    .option('--url <url>', 'gateway URL (default: CASEBRIDGE_URL, or CASEBRIDGE_HOST/PORT)')
    .option('--ca <pem>', 'CA bundle for the gateway certificate')
    .action(async (id: string, o: ConnOpts & { out: string }) => {
      const client = connect(o);
      const detail = await attempt(() => client.get(id), client);
      const env = (detail as unknown as { envelope: { type: string; body: unknown } }).envelope;
      if (env.type !== 'evidence.transfer') {
        throw new CliError(EXIT.CHECK_FAILED, `${id} is a ${env.type}, not an evidence.transfer`);
      }
      const items = (env.body as { items: { sha256: string; size: number }[] }).items;
      mkdirSync(o.out, { recursive: true });
      const failed: string[] = [];
      const seen = new Set<string>();
      for (const item of items) {
        if (seen.has(item.sha256)) continue;
        seen.add(item.sha256);
        const dest = join(o.out, item.sha256);
        try {
          await downloadEvidence(clientOptions(o, item.sha256.slice(0, 12)), id, item, dest);
          process.stdout.write(`${item.sha256}  ${dest}\n`);
        } catch (e) {
          if (!(e instanceof FileTransferError)) throw e;
          failed.push(item.sha256);
          process.stderr.write(`casebridge: ${e.message}\n`);
        }
      }
      if (failed.length > 0) {
        throw new CliError(EXIT.CHECK_FAILED, `${failed.length} of ${seen.size} files failed`);
      }
    });
}
