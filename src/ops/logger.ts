import winston from 'winston';

/**
 * Operational log: JSON lines. Callers pass ids, codes, digests and counts only;
 * names, identifiers and free text from message bodies never reach it.
 */
export type Logger = Pick<winston.Logger, 'info' | 'warn' | 'error' | 'debug'>;

export function createLogger(level: string, silent = false): Logger {
  return winston.createLogger({
    level,
    silent,
    format: winston.format.combine(winston.format.timestamp(), winston.format.json()),
    defaultMeta: { service: 'casebridge' },
    transports: [
      new winston.transports.Console({ stderrLevels: ['error', 'warn', 'info', 'debug'] }),
    ],
  });
}
