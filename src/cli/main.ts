#!/usr/bin/env node
/**
 * The `casebridge` command (protocol §7). Exit codes: 0 success, 1 a check failed,
 * 2 usage or configuration error, with a one-line reason on stderr.
 */
import { Command, CommanderError } from 'commander';
import { ConfigError } from '../errors.js';
import { FAILURE_DETAIL, StoreUnavailableError } from '../store/index.js';
import { TopologyError } from '../transport/index.js';
import { registerAuditCommands } from './audit-commands.js';
import { CliError, EXIT } from './exit.js';
import { registerFileCommands } from './file-commands.js';
import { registerKeyCommands } from './key-commands.js';
import { registerMessageCommands } from './message-commands.js';
import { registerPkiCommands } from './pki-commands.js';
import { registerServe } from './serve.js';

const program = new Command()
  .name('casebridge')
  .description('Signed-message gateway for cross-border case cooperation')
  .exitOverride()
  .configureOutput({ outputError: (str, write) => write(str) });

registerServe(program);
registerMessageCommands(program);
registerPkiCommands(program);
registerAuditCommands(program);
registerFileCommands(program);
registerKeyCommands(program);

try {
  await program.parseAsync(process.argv);
} catch (e) {
  process.exitCode = exitCodeFor(e);
}

function exitCodeFor(e: unknown): number {
  if (e instanceof CommanderError) {
    // Help and version are successes; every other parse error is usage.
    return e.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
  }
  if (e instanceof CliError) {
    process.stderr.write(`casebridge: ${e.message}\n`);
    return e.exitCode;
  }
  if (e instanceof ConfigError) {
    process.stderr.write(`casebridge: configuration: ${e.message}\n`);
    return EXIT.USAGE;
  }
  if (e instanceof TopologyError) {
    // The broker holds a different topology than protocol §5.2: an operator must decide.
    process.stderr.write(`casebridge: broker topology: ${e.message}\n`);
    return EXIT.USAGE;
  }
  if (e instanceof StoreUnavailableError) {
    // Like a configuration error, an operator must act first (free space, fix the
    // disk, bring the database back).
    const where = e.reason === 'unreachable' ? 'CASEBRIDGE_DATABASE_URL' : 'CASEBRIDGE_DATA_DIR';
    process.stderr.write(
      `casebridge: ${where}: ${FAILURE_DETAIL[e.reason]} (${e.causeCode}); cannot start\n`,
    );
    return EXIT.USAGE;
  }
  process.stderr.write(`casebridge: ${e instanceof Error ? e.message : String(e)}\n`);
  return EXIT.CHECK_FAILED;
}
