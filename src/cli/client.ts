import { request } from 'node:https';
import { existsSync, readFileSync } from 'node:fs';
import { DEV_PKI_DIR } from '../config/index.js';
import { CliError, EXIT } from './exit.js';

export interface ClientOptions {
  url: string;
  cert: string;
  key: string;
  /** CA bundle that issued the gateway's certificate. */
  ca?: string;
}

export interface ClientResponse {
  status: number;
  contentType: string;
  body: string;
}

function read(path: string, what: string): string {
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

/** One HTTPS request with the caller's client certificate (mutual TLS). */
export function call(
  opts: ClientOptions,
  method: string,
  path: string,
  body?: { type: string; data: string },
): Promise<ClientResponse> {
  const url = new URL(path, opts.url);
  const ca = opts.ca ?? defaultCa();
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method,
        cert: read(opts.cert, 'certificate'),
        key: read(opts.key, 'key'),
        ...(ca ? { ca: read(ca, 'CA bundle') } : {}),
        headers: body
          ? { 'content-type': body.type, 'content-length': Buffer.byteLength(body.data) }
          : {},
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            contentType: String(res.headers['content-type'] ?? ''),
            body: Buffer.concat(chunks).toString('utf8'),
          }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', (e) =>
      reject(new CliError(EXIT.CHECK_FAILED, `cannot reach ${url.origin}: ${e.message}`)),
    );
    if (body) req.write(body.data);
    req.end();
  });
}
