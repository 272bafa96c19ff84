/**
 * The composition root: reads validated configuration once and builds the store,
 * the audit log's checkpointer, the transport, the HTTP app and the admin server.
 * Nothing else in the code base reads configuration or holds global state.
 */
import {
  createHash,
  randomUUID,
  createPrivateKey,
  createPublicKey,
  type KeyObject,
  type X509Certificate,
} from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { vkeyFor } from './audit/checkpoint.js';
import type { AuditActor } from './audit/types.js';
import { Checkpointer } from './checkpoints/index.js';
import { LeaseKeeper } from './checkpoints/lease.js';
import type { Config } from './config/index.js';
import { certificateSubject } from './envelope/jws.js';
import { ConfigError } from './errors.js';
import { createHttpApp, createHttpsServer } from './http/app.js';
import type { HttpContext } from './http/context.js';
import type { InFlightLimits } from './http/limits.js';
import { RateLimiter } from './http/rate.js';
import { sweepFiles, type SweepReport } from './files/expiry.js';
import { UploadService } from './files/uploads.js';
import { createAdminServer, type Readiness } from './ops/admin.js';
import { createLogger, type Logger } from './ops/logger.js';
import { ClockWatch } from './ops/clock.js';
import { Metrics } from './ops/metrics.js';
import { parsePemChain } from './pki/pem.js';
import { TrustStore } from './pki/trust-store.js';
import { loadRegistry, type Registry } from './registry/index.js';
import { openVault, Shredder, type MessageVault } from './retention/index.js';
import { EventHub } from './review/events.js';
import type { DecideDeps } from './review/index.js';
import { ReviewSweeper } from './review/sweeper.js';
import { createSchemaSet, parseStrictJson } from './schema/index.js';
import { FAILURE_DETAIL, openStore, type Store } from './store/index.js';
import { ThreadStore } from './store/sqlite/thread.js';
import type { SubmissionDeps } from './submission/submit.js';
import { createTransport, type Transport } from './transport/index.js';

/** Event streams one certificate may hold open (a few console tabs), and in all. */
const MAX_STREAMS_PER_PRINCIPAL = 8;
const MAX_STREAMS = 2000;
/** How often claims are checked for lapse and deadlines for overdue (protocol §5.5). */
const SWEEP_INTERVAL_MS = 1000;
const DECISION_SCHEMA_FILE = 'decision.schema.json';

/** `<package root>/schemas`, whether running from `dist/src` or elsewhere. */
export const SCHEMA_DIR = fileURLToPath(new URL('../../schemas/', import.meta.url));

/** How often expired and abandoned evidence files are swept (protocol §9.1). */
const FILE_SWEEP_INTERVAL_MS = 60_000;
/** Untracked bytes younger than this may belong to an upload another gateway is finishing. */
const FILE_SWEEP_GRACE_MS = 10 * 60_000;

function logSweepError(logger: Logger, e: unknown): void {
  logger.error('file sweep failed', { error: e instanceof Error ? e.name : typeof e });
}

export interface GatewayOptions {
  config: Config;
  logger?: Logger;
  now?: () => Date;
}

export interface Gateway {
  readonly config: Config;
  readonly store: Store;
  readonly transport: Transport;
  readonly checkpointer: Checkpointer;
  /** Destroys message content past CASEBRIDGE_RETENTION_DAYS; undefined keeps it forever. */
  readonly shredder: Shredder | undefined;
  readonly metrics: Metrics;
  /** The trust store (anchors, CRLs, chain caches). */
  readonly trust: TrustStore;
  readonly https: HttpsServer;
  readonly admin: Server;
  /** `https://host:port` of the API. */
  readonly url: string;
  /** `http://127.0.0.1:port` of the admin endpoints. */
  readonly adminUrl: string;
  /** Lapses expired claims and reports overdue messages (protocol §5.5). */
  readonly sweeper: ReviewSweeper;
  readonly uploads: UploadService;
  /** One expiry and reconciliation pass over the evidence files (protocol §9.1). */
  sweepFiles(graceMs?: number): Promise<SweepReport>;
  /** Re-reads CASEBRIDGE_CRL (SIGHUP). On error the previous CRLs stay in force. */
  reloadCrl(): Promise<void>;
  close(): Promise<void>;
}

function readConfigFile(variable: string, path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError(variable, `cannot read ${path}`, { cause: e });
  }
}

function privateKeyFrom(variable: string, pem: string): KeyObject {
  try {
    return createPrivateKey(pem);
  } catch (e) {
    throw new ConfigError(variable, 'is not a PEM private key', { cause: e });
  }
}

function sameKey(a: KeyObject, b: KeyObject): boolean {
  const der = (k: KeyObject) => k.export({ type: 'spki', format: 'der' });
  return der(a).equals(der(b));
}

function loadGatewayIdentity(config: Config, registry: Registry) {
  let chain: X509Certificate[];
  try {
    chain = parsePemChain(readConfigFile('CASEBRIDGE_TLS_CERT', config.tlsCert));
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    throw new ConfigError('CASEBRIDGE_TLS_CERT', 'holds no valid PEM certificate', { cause: e });
  }
  if (chain.length === 0) throw new ConfigError('CASEBRIDGE_TLS_CERT', 'holds no certificate');
  const leaf = chain[0]!;
  const key = privateKeyFrom(
    'CASEBRIDGE_TLS_KEY',
    readConfigFile('CASEBRIDGE_TLS_KEY', config.tlsKey),
  );
  if (!sameKey(createPublicKey(key), leaf.publicKey)) {
    throw new ConfigError(
      'CASEBRIDGE_TLS_KEY',
      'does not match the certificate in CASEBRIDGE_TLS_CERT',
    );
  }
  const org = /(?:^|\n)O=([^\n]*)/.exec(leaf.subject)?.[1];
  if (org !== registry.gatewayId) {
    throw new ConfigError(
      'CASEBRIDGE_TLS_CERT',
      `subject O must be the registry's gateway id ${registry.gatewayId}`,
    );
  }
  return { id: registry.gatewayId, key, chain, certPem: readFileSync(config.tlsCert, 'utf8') };
}

function loadLogKey(config: Config): KeyObject {
  const key = privateKeyFrom(
    'CASEBRIDGE_LOG_KEY',
    readConfigFile('CASEBRIDGE_LOG_KEY', config.logKey),
  );
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new ConfigError('CASEBRIDGE_LOG_KEY', 'must be an Ed25519 private key (protocol §8)');
  }
  return key;
}

function loadTrust(config: Config, registry: Registry): TrustStore {
  const anchorsPem = readConfigFile('CASEBRIDGE_TRUST', config.trust);
  try {
    return new TrustStore({
      anchorsPem,
      ...(config.crl === undefined ? {} : { crlPem: readConfigFile('CASEBRIDGE_CRL', config.crl) }),
      isKnownOrg: (o) => registry.hasAgency(o),
      gatewayId: registry.gatewayId,
    });
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    const variable =
      (e as { source?: string }).source === 'crl' ? 'CASEBRIDGE_CRL' : 'CASEBRIDGE_TRUST';
    throw new ConfigError(variable, `cannot be used: ${(e as Error).message}`, { cause: e });
  }
}

/** Every stored message must still open: a lost key directory stops the start. */
async function checkVault(store: Store, vault: MessageVault, config: Config): Promise<void> {
  const missing = (await store.liveEpochs()).filter((e) => !vault.hasKey(e));
  if (missing.length > 0) {
    throw new ConfigError(
      'CASEBRIDGE_KEY_DIR',
      `${config.keyDir} has no key for epoch ${missing.join(', ')}, which stored messages need`,
    );
  }
}

/** A host as it goes into a URL: IPv6 literals in brackets. */
function urlHost(host: string): string {
  if (host === '::') return '[::1]';
  return host.includes(':') ? `[${host}]` : host;
}

/** Codes of a listen that the operator's configuration must fix. */
const LISTEN_CONFIG_ERRORS = new Set(['EADDRINUSE', 'EACCES', 'EADDRNOTAVAIL']);

function listen(
  server: Server | HttpsServer,
  port: number,
  host: string,
  variable: string,
): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    const fail = (e: unknown) => {
      const code = (e as { code?: unknown }).code;
      reject(
        typeof code === 'string' && LISTEN_CONFIG_ERRORS.has(code)
          ? new ConfigError(variable, `cannot listen on ${host}:${port} (${code})`, { cause: e })
          : e,
      );
    };
    server.once('error', fail);
    server.listen(port, host, () => {
      server.off('error', fail);
      resolve(server.address() as AddressInfo);
    });
  });
}

/** Stops accepting, lets requests in flight finish (up to `graceMs`), then cuts what is left. */
function close(server: Server | HttpsServer, graceMs = 5000): Promise<void> {
  return new Promise((resolve) => {
    const deadline = setTimeout(() => server.closeAllConnections(), graceMs);
    deadline.unref();
    server.close(() => {
      clearTimeout(deadline);
      resolve();
    });
    server.closeIdleConnections();
  });
}

export async function startGateway(opts: GatewayOptions): Promise<Gateway> {
  const { config } = opts;
  const now = opts.now ?? (() => new Date());
  const logger = opts.logger ?? createLogger(config.logLevel);
  const metrics = new Metrics();

  const schemas = createSchemaSet(SCHEMA_DIR);
  const registryText = readConfigFile('CASEBRIDGE_REGISTRY', config.registry);
  const registry = loadRegistry(registryText, SCHEMA_DIR);
  for (const [variable, ids] of [
    ['CASEBRIDGE_EXPORT_GRANT', config.exportGrant],
    ['CASEBRIDGE_AUDIT_GRANT', config.auditGrant],
    ['CASEBRIDGE_EXTERNAL_INBOXES', config.externalInboxes],
  ] as const) {
    const unknown = ids.find((id) => !registry.hasAgency(id));
    if (unknown !== undefined) throw new ConfigError(variable, `${unknown} is not in the registry`);
  }
  const gateway = loadGatewayIdentity(config, registry);
  const trust = loadTrust(config, registry);
  const logKey = loadLogKey(config);
  const logName = `casebridge/${gateway.id}`;
  const vkey = vkeyFor(logName, createPublicKey(logKey));

  const gatewayActor: AuditActor = {
    agency: gateway.id,
    role: 'gateway',
    subject: certificateSubject(gateway.chain[0]!),
  };
  const vault = openVault(config.dataKey, config.keyDir);
  const store = await openStore({
    config,
    now,
    gatewayActor,
    vault,
    ...(opts.now === undefined
      ? {
          thread: {
            gateway,
            onFailure: (e: Error) =>
              logger.error('the store thread stopped; writes are refused until a restart', {
                error: e.name,
              }),
          },
        }
      : {}),
  });
  try {
    await checkVault(store, vault, config);
  } catch (e) {
    await store.close();
    throw e;
  }
  const shredder =
    config.retentionDays === undefined
      ? undefined
      : new Shredder({
          store,
          keys: store instanceof ThreadStore ? store.epochKeys(vault.keys) : vault.keys,
          retentionDays: config.retentionDays,
          actor: gatewayActor,
          now,
          onShredded: (epoch, outcome) =>
            logger.info('message content shredded', { epoch, ...outcome }),
          onError: (e) =>
            logger.error('retention pass failed', {
              error: e instanceof Error ? e.name : typeof e,
            }),
        });
  const events = new EventHub({
    maxPerPrincipal: MAX_STREAMS_PER_PRINCIPAL,
    maxTotal: MAX_STREAMS,
    lookup: (id) => store.getMessage(id),
  });
  store.onChange((change) => events.publish(change));
  // Other gateways' changes may have been missed: the streams end, and their
  // clients read the list again when they reconnect (protocol §5.5).
  store.onGap?.(() => {
    logger.warn('change feed resumed after a gap; ending event streams so clients read again', {
      streams: events.size,
    });
    events.closeAll();
  });
  const sweeper = new ReviewSweeper({
    store,
    actor: gatewayActor,
    now,
    logger,
    intervalMs: SWEEP_INTERVAL_MS,
  });

  const transport = createTransport({
    url: config.amqpUrl,
    agencies: registry.agencies.map((a) => a.id),
    outbox: store,
    inbox: store,
    gatewayActor,
    deliveryLimit: config.deliveryLimit,
    externalInboxes: config.externalInboxes,
    logger,
    events: {
      confirmed: (n) => metrics.published.inc(n),
      retried: (reason) => metrics.publishRetries.inc({ reason }),
      delivered: () => metrics.delivered.inc(),
      duplicate: () => metrics.duplicates.inc(),
      poison: () => metrics.deadLettered.inc(),
      connection: (component, state) => logger.info('broker connection', { component, state }),
    },
  });

  // protocol §11: of the gateways sharing a store, the lease holder signs checkpoints.
  const signer = new LeaseKeeper({
    lease: store.lease,
    holder: `${gateway.id}/${hostname()}/${process.pid}/${randomUUID().slice(0, 8)}`,
    onChange: (held) => {
      metrics.signerLease.set(held ? 1 : 0);
      logger.info(held ? 'holds the checkpoint signer lease' : 'checkpoint signer on standby');
    },
    onError: (e) =>
      logger.warn('signer lease renewal failed', {
        error: e instanceof Error ? e.name : typeof e,
        code: (e as { code?: unknown } | null)?.code,
      }),
  });
  const checkpointer = new Checkpointer({
    mayPublish: () => signer.held,
    store,
    origin: logName,
    keyName: logName,
    key: logKey,
    intervalMs: config.checkpointIntervalMs,
    now,
    onSigned: (cp) => metrics.checkpointSize.set(cp.size),
    logger,
  });

  const submission: SubmissionDeps = {
    parseJson: parseStrictJson,
    validateEnvelope: (v) => schemas.validateEnvelope(v),
    parseChain: (x5c) => trust.chainFromX5c(x5c),
    verifyChain: (chain, at) => trust.verifyChain(chain, at),
    now,
    store,
    registry,
    gateway: { key: gateway.key, chain: gateway.chain },
    clockSkewMs: config.clockSkewS * 1000,
    maxAgeMs: config.maxAgeS * 1000,
    files: store.files,
    onAccepted: () => transport.kick(),
  };
  const review: DecideDeps = {
    store,
    submission,
    claimTtlMs: config.claimTtlS * 1000,
    now,
    validateDecision: (v) => schemas.validate(DECISION_SCHEMA_FILE, v),
  };
  const limits: InFlightLimits = {
    maxBytes: config.maxBytes,
    headerTimeoutMs: config.headerTimeoutS * 1000,
    bodyTimeoutMs: config.bodyTimeoutS * 1000,
    idleTimeoutMs: config.idleTimeoutS * 1000,
    maxConnections: config.maxConnections,
    maxBodies: config.maxBodies,
  };
  const uploads = new UploadService({
    directory: config.files.dir,
    index: store.files,
    limits: { maxBytes: config.files.maxBytes, quotaBytes: config.files.quotaBytes },
    onInternalError: (e) =>
      logger.error('upload failed', {
        error: e instanceof Error ? e.name : typeof e,
        code: (e as { code?: unknown } | undefined)?.code,
        stack: e instanceof Error ? e.stack?.split('\n').slice(0, 6).join('\n') : undefined,
      }),
  });
  const sweep = (graceMs = FILE_SWEEP_GRACE_MS) =>
    sweepFiles({
      index: store.files,
      objects: uploads.objects,
      uploads: uploads.store,
      ttlMs: config.files.ttlH * 3_600_000,
      graceMs,
      gatewayActor,
      now,
    });
  const ctx: HttpContext = {
    store,
    submission,
    review,
    events,
    claimExpiredSeen: () => sweeper.kick(),
    heartbeatMs: config.eventsHeartbeatS * 1000,
    verifyClient: (ders, at) => trust.verifyChain(trust.chainFromDer(ders), at),
    gateway: { id: gateway.id, key: gateway.key, chain: gateway.chain },
    log: { origin: logName, vkey, publicKey: createPublicKey(logKey) },
    trustAnchors: () => trust.anchorCertificates(),
    metrics,
    logger,
    maxBytes: config.maxBytes,
    limits,
    // Monotonic: a stepped wall clock neither refills nor drains the buckets.
    rateLimiter: new RateLimiter(config.ratePerMin, () => performance.now()),
    exportGrant: new Set(config.exportGrant),
    disclosure: { operatorId: gateway.id, auditGrant: new Set(config.auditGrant) },
    now,
    listen: { host: config.host, port: config.port },
    schemas: schemas.documents(),
    files: { uploads, files: store.files, schemaDir: SCHEMA_DIR },
  };

  // What is open so far, closed in reverse if the start fails half-way (protocol §8: one line, nothing left running).
  const undo: Array<() => Promise<void> | void> = [() => store.close()];
  const unwind = async () => {
    for (const step of undo.reverse()) await Promise.resolve(step()).catch(() => {});
  };
  try {
    // Administrative events: what the gateway runs with is itself on the record.
    const digest = (text: string) => 'sha256:' + createHash('sha256').update(text).digest('hex');
    await store.append({
      event: 'registry.loaded',
      actor: gatewayActor,
      digest: digest(registryText),
      detail: { agencies: registry.agencies.length },
    });
    if (config.crl !== undefined) {
      await store.append({
        event: 'pki.crl-loaded',
        actor: gatewayActor,
        digest: digest(readFileSync(config.crl, 'utf8')),
      });
    }

    // A broker that refuses our topology stops the start (transport.start leaves nothing open).
    await transport.start();
    undo.push(() => transport.stop());
    await signer.start();
    undo.push(() => signer.stop());
    checkpointer.start();
    undo.push(() => checkpointer.stop());
    sweeper.start();
    undo.push(() => sweeper.stop());
    shredder?.start();
    undo.push(() => shredder?.stop());
    let sweeping: Promise<unknown> = sweep().catch((e: unknown) => logSweepError(logger, e));
    const fileSweeper = setInterval(() => {
      sweeping = sweep().catch((e: unknown) => logSweepError(logger, e));
    }, FILE_SWEEP_INTERVAL_MS);
    fileSweeper.unref();
    const stopFileSweeper = async () => {
      clearInterval(fileSweeper);
      await sweeping;
    };
    undo.push(stopFileSweeper);
    const clock = watchClock(store, metrics, logger, gatewayActor);
    undo.push(() => clock.stop());

    const app = createHttpApp(ctx);
    const https = createHttpsServer(
      app,
      {
        key: gateway.key.export({ type: 'pkcs8', format: 'pem' }) as string,
        cert: gateway.certPem,
        ca: trust.anchorsPem(),
      },
      limits,
    );
    const readiness = async (): Promise<Readiness> => {
      const t = transport.status();
      const health = await store.health();
      const checks: Readiness['checks'] = {
        store:
          health.failure === undefined
            ? { ok: true, detail: health.engine }
            : { ok: false, detail: FAILURE_DETAIL[health.failure] },
        broker: { ok: t.connected, detail: `${t.mode}${t.blocked ? ', blocked' : ''}` },
        checkpoint: {
          ok: health.failure !== undefined || (await store.latestCheckpoint()) !== undefined,
        },
        // Informational: a standby gateway serves the whole API too (protocol §11).
        signer: { ok: true, detail: signer.held ? 'holds the lease' : 'standby' },
      };
      return { ready: Object.values(checks).every((c) => c.ok), checks };
    };
    const refresh = async () => {
      const t = transport.status();
      const health = await store.health();
      metrics.outboxLag.set(await store.outboxLag());
      metrics.outboxOldestAge.set(health.outboxOldestAgeS);
      metrics.inFlight.set(t.inFlight);
      metrics.brokerConnected.set(t.connected ? 1 : 0);
      metrics.brokerBlocked.set(t.blocked ? 1 : 0);
      metrics.auditSize.set(await store.treeSize());
      metrics.checkpointStale.set(await checkpointer.staleSeconds());
      metrics.storeWritable.set(health.failure === undefined ? 1 : 0);
      if (health.freeBytes !== undefined) metrics.dataDirFree.set(health.freeBytes);
      metrics.eventStreams.set(events.size);
      metrics.overdue.reset();
      metrics.dueSoon.reset();
      for (const c of await store.deadlineCounts(now())) {
        const labels = { agency: c.agency, priority: c.priority };
        metrics.overdue.set(labels, c.overdue);
        metrics.dueSoon.set(labels, c.dueSoon);
      }
    };
    const admin = createAdminServer(metrics, readiness, refresh);

    const apiAddr = await listen(https, config.port, config.host, 'CASEBRIDGE_PORT');
    undo.push(() => close(https, 0));
    const adminAddr = await listen(
      admin,
      config.adminPort,
      config.adminHost,
      'CASEBRIDGE_ADMIN_PORT',
    );
    logger.info('casebridge started', {
      gateway: gateway.id,
      url: `https://${config.host}:${apiAddr.port}`,
      admin: adminAddr.port,
      mode: config.amqpUrl ? 'amqp' : 'embedded',
      agencies: registry.agencies.length,
    });

    return {
      config,
      store,
      transport,
      checkpointer,
      shredder,
      sweeper,
      metrics,
      trust,
      https,
      admin,
      url: `https://${config.host}:${apiAddr.port}`,
      adminUrl: `http://${urlHost(config.adminHost === '0.0.0.0' ? '127.0.0.1' : config.adminHost)}:${adminAddr.port}`,
      async reloadCrl() {
        if (config.crl === undefined) return;
        const text = readFileSync(config.crl, 'utf8');
        const summary = trust.reloadCrls(text);
        await store.append({ event: 'pki.crl-loaded', actor: gatewayActor, digest: digest(text) });
        logger.info('CRLs reloaded', { ...summary });
      },
      uploads,
      sweepFiles: (graceMs) => sweep(graceMs),
      close: async () => {
        clock.stop();
        shredder?.stop();
        events.closeAll();
        await stopFileSweeper();
        return shutDown(
          { https, admin, checkpointer, signer, sweeper, transport, store, logger },
          config.shutdownS * 1000,
        );
      },
    };
  } catch (e) {
    await unwind();
    throw e;
  }
}

/**
 * Records each step of the wall clock: a metric, a log line and a content-free
 * `clock.stepped` audit entry with the step's size. Scheduling never uses the wall
 * clock, and entry timestamps never go back (the store clamps them).
 */
function watchClock(
  store: Pick<Store, 'append'>,
  metrics: Metrics,
  logger: Logger,
  actor: AuditActor,
): ClockWatch {
  const watch = new ClockWatch({
    onStep(stepMs) {
      const direction = stepMs < 0 ? 'backward' : 'forward';
      metrics.clockSteps.inc({ direction });
      logger.warn('wall clock stepped', { stepMs, direction });
      store
        .append({ event: 'clock.stepped', actor, detail: { stepMs, direction } })
        .catch((e: unknown) =>
          logger.error('clock step not recorded in the audit log', {
            error: e instanceof Error ? e.name : typeof e,
            code: (e as { code?: unknown } | null)?.code,
          }),
        );
    },
  });
  watch.start();
  return watch;
}

/** What is left for the store's last commit when the transport had to be cut. */
const STORE_CLOSE_RESERVE_MS = 500;

/**
 * Orderly shutdown within `budgetMs` (CASEBRIDGE_SHUTDOWN_S), whatever the broker
 * does: stop HTTP, stop the transport, and when a blocked broker holds it past the
 * budget, cut its connections. What was not yet published stays in the outbox.
 */
async function shutDown(
  parts: {
    https: HttpsServer;
    admin: Server;
    checkpointer: Checkpointer;
    signer: LeaseKeeper;
    sweeper: ReviewSweeper;
    transport: Transport;
    store: Store;
    logger: Logger;
  },
  budgetMs: number,
): Promise<void> {
  const { https, admin, checkpointer, signer, sweeper, transport, store, logger } = parts;
  const deadline = performance.now() + budgetMs;
  const left = () => Math.max(0, deadline - performance.now());
  const grace = Math.min(5000, budgetMs / 3);
  await Promise.all([close(https, grace), close(admin, grace)]);
  await within(sweeper.stop(), left() / 2);
  checkpointer.stop();
  const stopped = await within(transport.stop(), left() - STORE_CLOSE_RESERVE_MS);
  if (!stopped) {
    logger.warn('transport did not stop in time; broker connections cut', {
      budgetMs,
      inFlight: transport.status().inFlight,
    });
    transport.abort();
  }
  await within(checkpointer.final(), left());
  await within(signer.stop(), left());
  await store.close();
}

/** Resolves true when `p` settles within `ms`, false when the time ran out first. */
function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), Math.max(0, ms));
    p.then(
      () => {
        clearTimeout(timer);
        resolve(true);
      },
      () => {
        clearTimeout(timer);
        resolve(true);
      },
    );
  });
}
