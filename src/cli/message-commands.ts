import { createPrivateKey, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { signMessage } from '../envelope/sign.js';
import type { Envelope } from '../envelope/types.js';
import { parsePemChain } from '../pki/pem.js';
import { parseStrictJson } from '../schema/index.js';
import { call, type ClientOptions } from './client.js';
import { CliError, EXIT } from './exit.js';

const DEFAULT_URL = 'https://127.0.0.1:8443';

function readText(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    throw new CliError(EXIT.USAGE, `cannot read ${what} ${path}`);
  }
}

function signFile(path: string, certPath: string, keyPath: string, fresh: boolean): string {
  let envelope: Envelope;
  try {
    envelope = parseStrictJson(readText(path, 'envelope')) as Envelope;
  } catch (e) {
    if (e instanceof CliError) throw e;
    throw new CliError(EXIT.USAGE, `${path} is not valid JSON (${(e as Error).message})`);
  }
  if (fresh) {
    envelope = { ...envelope, id: randomUUID(), createdAt: new Date().toISOString() };
  }
  let chain;
  let key;
  try {
    chain = parsePemChain(readText(certPath, 'certificate'));
    key = createPrivateKey(readText(keyPath, 'key'));
  } catch (e) {
    if (e instanceof CliError) throw e;
    throw new CliError(EXIT.USAGE, `cannot load the certificate or key (${(e as Error).message})`);
  }
  if (chain.length === 0) throw new CliError(EXIT.USAGE, `${certPath} holds no certificate`);
  return signMessage(envelope, { key, chain });
}

interface ConnOpts {
  url: string;
  cert: string;
  key: string;
  ca?: string;
}

function clientOf(o: ConnOpts): ClientOptions {
  return { url: o.url, cert: o.cert, key: o.key, ...(o.ca ? { ca: o.ca } : {}) };
}

function print(res: { status: number; body: string }): void {
  process.stdout.write(res.body.endsWith('\n') ? res.body : res.body + '\n');
  if (res.status >= 400) {
    let code = '';
    try {
      code = (JSON.parse(res.body) as { code?: string }).code ?? '';
    } catch {
      // not problem+json
    }
    throw new CliError(EXIT.CHECK_FAILED, `the gateway answered ${res.status} ${code}`.trim());
  }
}

function withConnection(cmd: Command): Command {
  return cmd
    .requiredOption('--cert <pem>', 'client certificate (chain) PEM')
    .requiredOption('--key <pem>', 'client private key PEM (PKCS#8)')
    .option('--url <url>', 'gateway URL', process.env['CASEBRIDGE_URL'] ?? DEFAULT_URL)
    .option(
      '--ca <pem>',
      'CA bundle for the gateway certificate (default: CASEBRIDGE_TRUST or certs/trust.pem)',
    );
}

export function registerMessageCommands(program: Command): void {
  program
    .command('sign <envelope>')
    .description('print a compact JWS of the envelope, signed with the certificate key')
    .requiredOption('--cert <pem>', 'signer certificate (chain) PEM')
    .requiredOption('--key <pem>', 'signer private key PEM (PKCS#8)')
    .option('--fresh', 'give the envelope a new id and createdAt before signing')
    .action((file: string, o: { cert: string; key: string; fresh?: boolean }) => {
      process.stdout.write(signFile(file, o.cert, o.key, o.fresh === true) + '\n');
    });

  withConnection(
    program
      .command('submit <file>')
      .description('sign an envelope (.json) if needed, submit it, print the response')
      .option('--fresh', 'give a JSON envelope a new id and createdAt before signing'),
  ).action(async (file: string, o: ConnOpts & { fresh?: boolean }) => {
    const text = readText(file, 'message').trim();
    const jws = text.startsWith('{') ? signFile(file, o.cert, o.key, o.fresh === true) : text;
    print(await call(clientOf(o), 'POST', '/v1/messages', { type: 'application/jose', data: jws }));
  });

  withConnection(
    program
      .command('inbox')
      .description("list the caller's agency inbox, most urgent first")
      .option('--status <status>')
      .option('--type <type>')
      .option('--limit <n>'),
  ).action(async (o: ConnOpts & { status?: string; type?: string; limit?: string }) => {
    const q = new URLSearchParams();
    if (o.status) q.set('status', o.status);
    if (o.type) q.set('type', o.type);
    if (o.limit) q.set('limit', o.limit);
    print(await call(clientOf(o), 'GET', `/v1/inbox${q.size ? `?${q}` : ''}`));
  });

  withConnection(
    program.command('get <id>').description('show one message with its history'),
  ).action(async (id: string, o: ConnOpts) => {
    print(await call(clientOf(o), 'GET', `/v1/messages/${encodeURIComponent(id)}`));
  });
}
