import { randomUUID } from 'node:crypto';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import type { Envelope } from '../envelope/types.js';
import { parseStrictJson } from '../schema/index.js';
import { ApiError, type CasebridgeClient, type MessageSummary } from '../sdk/index.js';
import { attempt, connect, defaultUrl, readText, type ConnectionFlags } from './client.js';
import { CliError, EXIT } from './exit.js';
import { asJson, messageTable, messageView } from './format.js';

function readEnvelope(path: string, fresh: boolean): Envelope {
  let envelope: Envelope;
  try {
    envelope = parseStrictJson(readText(path, 'envelope')) as Envelope;
  } catch (e) {
    if (e instanceof CliError) throw e;
    throw new CliError(EXIT.USAGE, `${path} is not valid JSON (${(e as Error).message})`);
  }
  return fresh ? { ...envelope, id: randomUUID(), createdAt: new Date().toISOString() } : envelope;
}

/** The files named, a directory standing for its .json and .jws files in name order. */
function expandFiles(args: readonly string[]): string[] {
  const files: string[] = [];
  for (const arg of args) {
    let isDir: boolean;
    try {
      isDir = statSync(arg).isDirectory();
    } catch {
      throw new CliError(EXIT.USAGE, `cannot read message ${arg}`);
    }
    if (!isDir) {
      files.push(arg);
      continue;
    }
    const inDir = readdirSync(arg, { withFileTypes: true })
      .filter((d) => d.isFile() && !d.name.startsWith('.') && /\.(json|jws)$/i.test(d.name))
      .map((d) => d.name)
      .sort();
    if (inDir.length === 0) throw new CliError(EXIT.USAGE, `${arg} holds no .json or .jws file`);
    files.push(...inDir.map((n) => join(arg, n)));
  }
  return files;
}

/** One message through POST /v1/messages: its response, or its problem and exit 1. */
async function submitOne(client: CasebridgeClient, message: Envelope | string): Promise<void> {
  try {
    const res = await client.submit(message);
    out(JSON.stringify(res.body));
  } catch (e) {
    if (e instanceof ApiError) {
      out(JSON.stringify(e.problem));
      throw new CliError(EXIT.CHECK_FAILED, `the gateway answered ${e.status} ${e.code}`);
    }
    throw e instanceof Error ? new CliError(EXIT.CHECK_FAILED, e.message) : e;
  } finally {
    client.close();
  }
}

function signer(o: { cert: string; key: string }): CasebridgeClient {
  // Signing needs no gateway; the URL is never contacted.
  return connect({ ...o, url: defaultUrl() });
}

interface OutputFlags {
  json?: boolean;
}

/**
 * protocol §7: a table or view on a terminal, JSON with --json or when stdout is not
 * a terminal. CASEBRIDGE_TTY=1 (or 0) overrides the detection, e.g. for snapshots.
 */
export function forTerminal(o: OutputFlags, env: NodeJS.ProcessEnv = process.env): boolean {
  if (o.json === true) return false;
  if (env['CASEBRIDGE_TTY'] === '1') return true;
  if (env['CASEBRIDGE_TTY'] === '0') return false;
  return process.stdout.isTTY === true;
}

function out(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : text + '\n');
}

function withConnection(cmd: Command): Command {
  return cmd
    .requiredOption('--cert <pem>', 'client certificate (chain) PEM')
    .requiredOption('--key <pem>', 'client private key PEM (PKCS#8)')
    .option(
      '--url <url>',
      'gateway URL (default CASEBRIDGE_URL, else CASEBRIDGE_HOST:CASEBRIDGE_PORT)',
    )
    .option(
      '--ca <pem>',
      'CA bundle for the gateway certificate (default: CASEBRIDGE_TRUST or certs/trust.pem)',
    );
}

const PAGE = 200;

export function registerMessageCommands(program: Command): void {
  program
    .command('sign <envelope>')
    .description('print a compact JWS of the envelope, signed with the certificate key')
    .requiredOption('--cert <pem>', 'signer certificate (chain) PEM')
    .requiredOption('--key <pem>', 'signer private key PEM (PKCS#8)')
    .option('--fresh', 'give the envelope a new id and createdAt before signing')
    .action((file: string, o: { cert: string; key: string; fresh?: boolean }) => {
      const client = signer(o);
      try {
        out(client.sign(readEnvelope(file, o.fresh === true)));
      } finally {
        client.close();
      }
    });

  withConnection(
    program
      .command('submit <files...>')
      .description(
        'sign each envelope (.json) if needed and submit it, retrying safely on 429/503/network errors; ' +
          'one file is sent alone and its response printed, several files or a directory ' +
          '(its .json and .jws files, by name) go through the batch endpoint, one line per file',
      )
      .option('--fresh', 'give a JSON envelope a new id and createdAt before signing')
      .option('--retries <n>', 'retries after a network error, 429 or 503', '4'),
  ).action(async (args: string[], o: ConnectionFlags & { fresh?: boolean; retries: string }) => {
    const files = expandFiles(args);
    const readMessage = (file: string) => {
      const text = readText(file, 'message').trim();
      return text.startsWith('{') ? readEnvelope(file, o.fresh === true) : text;
    };
    if (files.length === 1 && args.length === 1 && files[0] === args[0]) {
      await submitOne(connect(o), readMessage(files[0]!));
      return;
    }
    const messages = files.map(readMessage);
    const client = connect(o);
    try {
      const outcomes = await client.submitBatch(messages);
      let refused = 0;
      outcomes.forEach((r, k) => {
        if (r.problem !== undefined) refused++;
        out(
          JSON.stringify(
            r.problem === undefined
              ? { file: files[k], status: r.status, body: r.body }
              : { file: files[k], status: r.status, problem: r.problem },
          ),
        );
      });
      if (refused > 0) {
        throw new CliError(EXIT.CHECK_FAILED, `${refused} of ${files.length} messages refused`);
      }
    } catch (e) {
      if (e instanceof CliError) throw e;
      throw e instanceof Error ? new CliError(EXIT.CHECK_FAILED, e.message) : e;
    } finally {
      client.close();
    }
  });

  withConnection(
    program
      .command('inbox')
      .description("list the caller's agency inbox, most urgent first")
      .option('--status <status>', 'only messages in this status')
      .option('--decision <decision>', 'only messages with this decision')
      .option('--type <type>', 'only messages of this type')
      .option(
        '--priority <priority>',
        'only messages of this priority (emergency, urgent, routine)',
      )
      .option('--limit <n>', `page size (1..${PAGE})`)
      .option('--cursor <cursor>', 'the nextCursor of a previous page')
      .option('--all', 'every page, following the cursor')
      .option('--json', 'print JSON (the default when stdout is not a terminal)'),
  ).action(
    async (
      o: ConnectionFlags &
        OutputFlags & {
          status?: string;
          decision?: string;
          type?: string;
          priority?: string;
          limit?: string;
          cursor?: string;
          all?: boolean;
        },
    ) => {
      const q = {
        ...(o.status ? { status: o.status } : {}),
        ...(o.decision ? { decision: o.decision } : {}),
        ...(o.type ? { type: o.type } : {}),
        ...(o.priority ? { priority: o.priority } : {}),
        ...(o.cursor ? { cursor: o.cursor } : {}),
      };
      const limit = o.limit === undefined ? undefined : Number(o.limit);
      if (limit !== undefined && !(Number.isInteger(limit) && limit >= 1 && limit <= PAGE))
        throw new CliError(EXIT.USAGE, `--limit must be an integer from 1 to ${PAGE}`);
      const client = connect(o);
      const page = await attempt(async () => {
        if (o.all !== true) return client.inbox({ ...q, ...(limit ? { limit } : {}) });
        const items: MessageSummary[] = [];
        for await (const m of client.inboxAll({ ...q, limit: limit ?? PAGE })) items.push(m);
        return { items, nextCursor: null };
      }, client);
      if (!forTerminal(o)) return out(asJson(page));
      out(messageTable(page.items));
      if (page.nextCursor) out(`more: --cursor ${page.nextCursor}  (or --all)`);
    },
  );

  withConnection(
    program
      .command('get <id>')
      .description('show one message with its history')
      .option('--json', 'print JSON (the default when stdout is not a terminal)'),
  ).action(async (id: string, o: ConnectionFlags & OutputFlags) => {
    const client = connect(o);
    const m = await attempt(() => client.get(id), client);
    out(forTerminal(o) ? messageView(m) : asJson(m));
  });

  withConnection(
    program
      .command('thread <id>')
      .description('show every message linked to one through inReplyTo, root first')
      .option('--json', 'print JSON (the default when stdout is not a terminal)'),
  ).action(async (id: string, o: ConnectionFlags & OutputFlags) => {
    const client = connect(o);
    const t = await attempt(() => client.thread(id), client);
    out(forTerminal(o) ? messageTable(t.items, { thread: true }) : asJson(t));
  });
}
