import { existsSync } from 'node:fs';
import { isIP } from 'node:net';
import { resolve } from 'node:path';
import { ConfigError } from '../errors.js';

/** Validated configuration (protocol §8). Paths are absolute. */
export interface Config {
  host: string;
  port: number;
  dataDir: string;
  tlsCert: string;
  tlsKey: string;
  trust: string;
  crl: string | undefined;
  registry: string;
  logKey: string;
  amqpUrl: string | undefined;
  /** protocol §11: a PostgreSQL store instead of the embedded SQLite one. */
  databaseUrl: string | undefined;
  /** The embedded store's transactions run on a thread of their own (docs/performance.md). */
  storeThread: boolean;
  adminPort: number;
  /** Where the admin port listens: loopback unless a container needs its probes reachable. */
  adminHost: string;
  maxBytes: number;
  clockSkewS: number;
  /** protocol §2.2: oldest `createdAt` accepted, seconds before now. */
  maxAgeS: number;
  /** protocol §12: time for the TLS handshake and the request headers. */
  headerTimeoutS: number;
  /** protocol §12: time for a whole request body. */
  bodyTimeoutS: number;
  /** protocol §12: how long an idle keep-alive connection is kept. */
  idleTimeoutS: number;
  /** protocol §12: open connections at most. */
  maxConnections: number;
  /** protocol §12: request bodies read at the same time at most. */
  maxBodies: number;
  /** protocol §12: submissions per principal per minute. */
  ratePerMin: number;
  logLevel: 'error' | 'warn' | 'info' | 'debug';
  /** How often a checkpoint is signed while the log grows (protocol §6.3: at least every second). */
  checkpointIntervalMs: number;
  /** Deliveries of one message before the broker dead-letters it. */
  deliveryLimit: number;
  /** Agencies whose auditors may export message JWS (`/v1/audit/export?messages=true`). */
  exportGrant: string[];
  /** Agencies whose auditors see the metadata of every audit entry, not only their own. */
  auditGrant: string[];
  /** The data key file: wraps the epoch keys of message bytes at rest. */
  dataKey: string;
  /** Where the epoch keys live; never inside the database. */
  keyDir: string;
  /** Days a message's content is kept after acceptance; undefined keeps it forever. */
  retentionDays: number | undefined;
  /** Agencies that read their RabbitMQ inbox queue themselves; the gateway does not consume it. */
  externalInboxes: string[];
  /** protocol §5.5: a claim lapses after this many seconds. */
  claimTtlS: number;
  /** Seconds between `: ping` comments on `GET /v1/events`. */
  eventsHeartbeatS: number;
  /** Longest a shutdown (SIGTERM) may take, whatever the broker does. */
  shutdownS: number;
  /** protocol §9, §11: evidence files, shared by every gateway of a deployment. */
  files: {
    dir: string;
    maxBytes: number;
    quotaBytes: number;
    ttlH: number;
  };
}

type Env = Record<string, string | undefined>;

/** Where `init-dev` writes the development PKI; the defaults below point into it. */
export const DEV_PKI_DIR = 'certs';

function str(env: Env, name: string, fallback: string): string {
  const v = env[name];
  if (v === undefined || v === '') return fallback;
  return v;
}

function int(env: Env, name: string, fallback: number, min: number, max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!/^\d+$/.test(raw.trim())) throw new ConfigError(name, `must be an integer, got "${raw}"`);
  const n = Number(raw.trim());
  if (n < min || n > max)
    throw new ConfigError(name, `must be between ${min} and ${max}, got ${n}`);
  return n;
}

function file(env: Env, name: string, fallback: string, cwd: string): string {
  const p = resolve(cwd, str(env, name, fallback));
  if (!existsSync(p)) {
    const hint = env[name] ? '' : ' (run `casebridge init-dev` for a development PKI)';
    throw new ConfigError(name, `file not found: ${p}${hint}`);
  }
  return p;
}

function amqpUrl(env: Env): string | undefined {
  const v = env['CASEBRIDGE_AMQP_URL'];
  if (v === undefined || v === '') return undefined;
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    throw new ConfigError('CASEBRIDGE_AMQP_URL', 'is not a URL');
  }
  if (u.protocol !== 'amqp:' && u.protocol !== 'amqps:') {
    throw new ConfigError('CASEBRIDGE_AMQP_URL', 'must use amqp:// or amqps://');
  }
  return v;
}

/** The admin port serves /metrics and /readyz unauthenticated: an address, never a name to resolve. */
function adminHost(env: Env): string {
  const v = str(env, 'CASEBRIDGE_ADMIN_HOST', '127.0.0.1');
  if (isIP(v) === 0) throw new ConfigError('CASEBRIDGE_ADMIN_HOST', 'must be an IP address');
  return v;
}

function databaseUrl(env: Env): string | undefined {
  const v = env['CASEBRIDGE_DATABASE_URL'];
  if (v === undefined || v === '') return undefined;
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    throw new ConfigError('CASEBRIDGE_DATABASE_URL', 'is not a URL');
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') {
    throw new ConfigError('CASEBRIDGE_DATABASE_URL', 'must use postgres:// or postgresql://');
  }
  return v;
}

function onOff(env: Env, name: string, fallback: boolean): boolean {
  const v = env[name];
  if (v === undefined || v === '') return fallback;
  if (v === 'on') return true;
  if (v === 'off') return false;
  throw new ConfigError(name, 'must be on or off');
}

const GIB = 1024 ** 3;

const AGENCY_ID = /^[A-Z]{2}(-[A-Z0-9]{1,12}){1,4}$/;

function agencyList(env: Env, name: string): string[] {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return [];
  const ids = raw.split(',').map((s) => s.trim());
  for (const id of ids) {
    if (!AGENCY_ID.test(id)) throw new ConfigError(name, `"${id}" is not an agency id`);
  }
  return ids;
}

function optionalInt(env: Env, name: string, min: number, max: number): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return undefined;
  return int(env, name, 0, min, max);
}

/** Reads and validates the environment; throws ConfigError naming the first bad variable. */
export function loadConfig(env: Env = process.env, cwd: string = process.cwd()): Config {
  const logLevel = str(env, 'CASEBRIDGE_LOG_LEVEL', 'info');
  if (!['error', 'warn', 'info', 'debug'].includes(logLevel)) {
    throw new ConfigError('CASEBRIDGE_LOG_LEVEL', 'must be error, warn, info or debug');
  }
  const host = str(env, 'CASEBRIDGE_HOST', '127.0.0.1');
  const defaultCrl = resolve(cwd, DEV_PKI_DIR, 'crl.pem');
  const crl = env['CASEBRIDGE_CRL']
    ? file(env, 'CASEBRIDGE_CRL', '', cwd)
    : existsSync(defaultCrl) && !env['CASEBRIDGE_TRUST']
      ? defaultCrl
      : undefined;
  const dataDir = resolve(cwd, str(env, 'CASEBRIDGE_DATA_DIR', './data'));
  return {
    host,
    port: int(env, 'CASEBRIDGE_PORT', 8443, 0, 65535),
    dataDir,
    tlsCert: file(env, 'CASEBRIDGE_TLS_CERT', `${DEV_PKI_DIR}/gateway/gateway.crt.pem`, cwd),
    tlsKey: file(env, 'CASEBRIDGE_TLS_KEY', `${DEV_PKI_DIR}/gateway/gateway.key.pem`, cwd),
    trust: file(env, 'CASEBRIDGE_TRUST', `${DEV_PKI_DIR}/trust.pem`, cwd),
    crl,
    registry: file(env, 'CASEBRIDGE_REGISTRY', `${DEV_PKI_DIR}/registry.json`, cwd),
    logKey: file(env, 'CASEBRIDGE_LOG_KEY', `${DEV_PKI_DIR}/log/log.key.pem`, cwd),
    amqpUrl: amqpUrl(env),
    databaseUrl: databaseUrl(env),
    storeThread: onOff(env, 'CASEBRIDGE_STORE_THREAD', true),
    adminPort: int(env, 'CASEBRIDGE_ADMIN_PORT', 9464, 0, 65535),
    adminHost: adminHost(env),
    maxBytes: int(env, 'CASEBRIDGE_MAX_BYTES', 1024 * 1024, 1024, 64 * 1024 * 1024),
    clockSkewS: int(env, 'CASEBRIDGE_CLOCK_SKEW_S', 300, 0, 86400),
    maxAgeS: int(env, 'CASEBRIDGE_MAX_AGE_S', 604800, 60, 10 * 365 * 86400),
    headerTimeoutS: int(env, 'CASEBRIDGE_HEADER_TIMEOUT_S', 10, 1, 600),
    bodyTimeoutS: int(env, 'CASEBRIDGE_BODY_TIMEOUT_S', 30, 1, 3600),
    idleTimeoutS: int(env, 'CASEBRIDGE_IDLE_TIMEOUT_S', 5, 1, 3600),
    maxConnections: int(env, 'CASEBRIDGE_MAX_CONNECTIONS', 1000, 1, 1_000_000),
    maxBodies: int(env, 'CASEBRIDGE_MAX_BODIES', 64, 1, 100_000),
    ratePerMin: int(env, 'CASEBRIDGE_RATE_PER_MIN', 600, 1, 1_000_000),
    logLevel: logLevel as Config['logLevel'],
    checkpointIntervalMs: int(env, 'CASEBRIDGE_CHECKPOINT_MS', 500, 50, 1000),
    deliveryLimit: int(env, 'CASEBRIDGE_DELIVERY_LIMIT', 5, 1, 1000),
    exportGrant: agencyList(env, 'CASEBRIDGE_EXPORT_GRANT'),
    auditGrant: agencyList(env, 'CASEBRIDGE_AUDIT_GRANT'),
    dataKey: file(env, 'CASEBRIDGE_DATA_KEY', `${DEV_PKI_DIR}/data/data.key.pem`, cwd),
    keyDir: resolve(cwd, str(env, 'CASEBRIDGE_KEY_DIR', resolve(dataDir, 'keys'))),
    retentionDays: optionalInt(env, 'CASEBRIDGE_RETENTION_DAYS', 1, 36500),
    externalInboxes: agencyList(env, 'CASEBRIDGE_EXTERNAL_INBOXES'),
    claimTtlS: int(env, 'CASEBRIDGE_CLAIM_TTL_S', 1800, 1, 7 * 86400),
    eventsHeartbeatS: int(env, 'CASEBRIDGE_EVENTS_HEARTBEAT_S', 15, 1, 300),
    shutdownS: int(env, 'CASEBRIDGE_SHUTDOWN_S', 10, 1, 600),
    files: {
      dir: resolve(cwd, str(env, 'CASEBRIDGE_FILES_DIR', resolve(dataDir, 'files'))),
      maxBytes: int(env, 'CASEBRIDGE_FILE_MAX_BYTES', 4 * GIB, 0, 2 ** 50),
      quotaBytes: int(env, 'CASEBRIDGE_FILE_QUOTA_BYTES', 256 * GIB, 0, 2 ** 50),
      ttlH: int(env, 'CASEBRIDGE_FILE_TTL_H', 72, 1, 24 * 365),
    },
  };
}
