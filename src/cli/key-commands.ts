/**
 * `casebridge keys rewrap` (docs/operations.md, "Key rotation"): brings every epoch
 * key file of CASEBRIDGE_KEY_DIR from the current data key (CASEBRIDGE_DATA_KEY)
 * under a new one. Configured by the same variables as `serve`. Exit 0 only when
 * every epoch key file is under the new key at the end; 1 when one is under
 * neither key or could not be rewritten; 2 for usage or configuration.
 */
import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { loadConfig } from '../config/index.js';
import { DataDirLock } from '../store/sqlite/dir-lock.js';
import { ConfigError } from '../errors.js';
import { readDataKey } from '../retention/keys.js';
import {
  LOCAL_DATA_KEY_FILE,
  inspectEpochKeys,
  leftoverTemporaries,
  removeTemporaries,
  rewrapEpochKey,
  type EpochKeyFile,
} from '../retention/rewrap.js';
import { SealError } from '../retention/seal.js';
import { CliError, EXIT } from './exit.js';

const OFFLINE_HELP = `
A running gateway keeps the epoch keys it opened in memory and creates each new
day's key under the data key it started with, so every gateway using the key
directory must be stopped first. A gateway on the embedded store holds its data
directory, and the command refuses to run while one does; but a gateway takes no
lock on CASEBRIDGE_KEY_DIR, and gateways on PostgreSQL (or on another host) hold
nothing this command can see. --offline is your statement that every gateway
using this key directory is stopped.

Safe to interrupt: each file is written to a temporary name, synced and renamed
over the old one. Run the command again and it finishes the job; files already
under the new key are left as they are.

Then install the new key as CASEBRIDGE_DATA_KEY on every gateway and start them.
A gateway given the old key refuses to start, naming CASEBRIDGE_DATA_KEY.`;

const out = (line: string) => process.stdout.write(`${line}\n`);
const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

function refusal(f: EpochKeyFile): string {
  return f.state === 'local'
    ? `${f.epoch} error: ${f.path} opens only with ${LOCAL_DATA_KEY_FILE}, the key of a store opened without CASEBRIDGE_DATA_KEY`
    : `${f.epoch} error: ${f.path} opens with neither CASEBRIDGE_DATA_KEY nor --new-key`;
}

interface RewrapOpts {
  newKey: string;
  offline?: boolean;
  dryRun?: boolean;
}

function rewrap(o: RewrapOpts): void {
  const config = loadConfig();
  if (!o.offline && !o.dryRun) {
    throw new CliError(
      EXIT.USAGE,
      '--offline is required: stop every gateway using CASEBRIDGE_KEY_DIR first (not every one can be seen from here)',
    );
  }
  // The one thing that can be told: a gateway running on the embedded store holds its
  // data directory (PostgreSQL gateways hold nothing on the key directory).
  if (
    config.databaseUrl === undefined &&
    existsSync(config.dataDir) &&
    DataDirLock.isHeld(config.dataDir)
  ) {
    throw new CliError(
      EXIT.USAGE,
      `a gateway is running on CASEBRIDGE_DATA_DIR (${config.dataDir}); stop it first`,
    );
  }
  const dir = config.keyDir;
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new ConfigError('CASEBRIDGE_KEY_DIR', `${dir} is not a directory`);
  }
  const keys = {
    current: readDataKey(config.dataKey),
    next: readDataKey(resolve(o.newKey), '--new-key'),
  };
  try {
    if (keys.current.equals(keys.next)) {
      throw new CliError(EXIT.USAGE, '--new-key holds the same key as CASEBRIDGE_DATA_KEY');
    }
    if (existsSync(join(dir, LOCAL_DATA_KEY_FILE))) {
      out(
        `note: ${join(dir, LOCAL_DATA_KEY_FILE)} is the key a store opened without CASEBRIDGE_DATA_KEY keeps for itself (tests, tools); no gateway uses it, and it is left as it is`,
      );
    }
    const files = inspectEpochKeys(dir, keys);
    const refused = files.filter((f) => f.state === 'local' || f.state === 'unknown');
    if (refused.length > 0) {
      for (const f of refused) out(refusal(f));
      throw new CliError(
        EXIT.CHECK_FAILED,
        `${plural(refused.length, 'epoch key file')} of ${files.length} in ${dir} under neither key; nothing rewrapped`,
      );
    }
    const current = files.filter((f) => f.state === 'current').length;
    if (o.dryRun) {
      for (const f of files)
        out(`${f.epoch} ${f.state === 'new' ? 'already new' : 'opens with the current key'}`);
      const temps = leftoverTemporaries(dir).length;
      out(
        `dry run: ${plural(current, 'epoch key')} to rewrap, ${files.length - current} already new, in ${dir}` +
          (temps > 0 ? `; ${plural(temps, 'leftover temporary file')} to remove` : '') +
          '; nothing written',
      );
      return;
    }

    const removed = removeTemporaries(dir);
    if (removed > 0) out(`removed ${plural(removed, 'temporary file')} an interrupted write left`);
    let rewrapped = 0;
    let failed = 0;
    for (const f of files) {
      if (f.state === 'new') {
        out(`${f.epoch} already new`);
        continue;
      }
      try {
        rewrapEpochKey(dir, f.epoch, f.path, keys);
        rewrapped++;
        out(`${f.epoch} rewrapped`);
      } catch (e) {
        failed++;
        // The file changed since it was inspected: something else writes the directory.
        if (!(e instanceof SealError)) throw e;
        out(`${f.epoch} error: ${f.path} no longer opens with CASEBRIDGE_DATA_KEY`);
      }
    }
    // The end state, read back from the disk: every file, including any that appeared meanwhile.
    const after = inspectEpochKeys(dir, keys);
    const notNew = after.filter((f) => f.state !== 'new');
    if (failed > 0 || notNew.length > 0) {
      throw new CliError(
        EXIT.CHECK_FAILED,
        `${plural(notNew.length, 'epoch key file')} in ${dir} not under the new key (${notNew
          .map((f) => f.epoch)
          .join(', ')}); is a gateway still running?`,
      );
    }
    out(
      `${plural(after.length, 'epoch key')} in ${dir} under the new key (${rewrapped} rewrapped, ${after.length - rewrapped} already new); ` +
        'install it as CASEBRIDGE_DATA_KEY on every gateway, then start them',
    );
  } finally {
    keys.current.fill(0);
    keys.next.fill(0);
  }
}

export function registerKeyCommands(program: Command): void {
  const keys = program
    .command('keys')
    .description('the keys of message content at rest (docs/operations.md, "Key rotation")');
  keys
    .command('rewrap')
    .description(
      'seal every epoch key of CASEBRIDGE_KEY_DIR again under a new data key (rotating CASEBRIDGE_DATA_KEY); configured like serve',
    )
    .requiredOption(
      '--new-key <file>',
      'the new data key, a PEM file like the data/data.key.pem init-dev writes',
    )
    .option('--offline', 'required: every gateway using the key directory is stopped')
    .option(
      '--dry-run',
      'only check that every epoch key opens with the current key; write nothing',
    )
    .addHelpText('after', OFFLINE_HELP)
    .action((o: RewrapOpts) => rewrap(o));
}
