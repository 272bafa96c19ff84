/**
 * The CLI's connection to a gateway, through the SDK (src/sdk): files named on the
 * command line become a CasebridgeClient; SDK errors become one-line CLI failures.
 */
import { existsSync, readFileSync } from 'node:fs';
import { DEV_PKI_DIR } from '../config/index.js';
import { ApiError, CasebridgeClient, TransportError } from '../sdk/index.js';
import { CliError, EXIT } from './exit.js';

export interface ConnectionFlags {
  url?: string;
  cert: string;
  key: string;
  /** CA bundle that issued the gateway's certificate. */
  ca?: string;
}

const DEFAULT_URL = 'https://127.0.0.1:8443';

/** protocol §8: CASEBRIDGE_URL, else CASEBRIDGE_HOST and CASEBRIDGE_PORT, else the default. */
export function defaultUrl(env: NodeJS.ProcessEnv = process.env): string {
  if (env['CASEBRIDGE_URL']) return env['CASEBRIDGE_URL'];
  const host = env['CASEBRIDGE_HOST'];
  const port = env['CASEBRIDGE_PORT'];
  if (host || port) {
    const h = (host || '127.0.0.1').includes(':') ? `[${host}]` : host || '127.0.0.1';
    return `https://${h}:${port || '8443'}`;
  }
  return DEFAULT_URL;
}

export function readText(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    throw new CliError(EXIT.USAGE, `cannot read ${what} ${path}`);
  }
}

export function defaultCa(): string | undefined {
  const env = process.env['CASEBRIDGE_TRUST'];
  if (env) return env;
  const dev = `${DEV_PKI_DIR}/trust.pem`;
  return existsSync(dev) ? dev : undefined;
}

export function connect(o: ConnectionFlags): CasebridgeClient {
  const ca = o.ca ?? defaultCa();
  const cert = readText(o.cert, 'certificate');
  const key = readText(o.key, 'key');
  try {
    return new CasebridgeClient({
      url: o.url ?? defaultUrl(),
      cert,
      key,
      ...(ca ? { ca: readText(ca, 'CA bundle') } : {}),
    });
  } catch (e) {
    throw new CliError(EXIT.USAGE, `cannot load the certificate or key (${(e as Error).message})`);
  }
}

/** Runs one SDK call; a problem or an unreachable gateway is a one-line check failure. */
export async function attempt<T>(run: () => Promise<T>, client?: CasebridgeClient): Promise<T> {
  try {
    return await run();
  } catch (e) {
    if (e instanceof ApiError) {
      throw new CliError(
        EXIT.CHECK_FAILED,
        `the gateway answered ${e.status} ${e.code}${e.problem.detail ? `: ${e.problem.detail}` : ''}`,
      );
    }
    if (e instanceof TransportError) throw new CliError(EXIT.CHECK_FAILED, e.message);
    throw e;
  } finally {
    client?.close();
  }
}
