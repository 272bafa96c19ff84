/** protocol §7 exit codes. */
export const EXIT = { OK: 0, CHECK_FAILED: 1, USAGE: 2 } as const;

/** An expected CLI failure: printed as one line, then exit with `exitCode`. */
export class CliError extends Error {
  constructor(
    readonly exitCode: number,
    message: string,
  ) {
    super(message);
    this.name = 'CliError';
  }
}
