/**
 * Pipeline benchmark (not a test): how close the gateway's accept path comes to
 * what the broker alone can confirm, measured in the same run on the same machine.
 *
 * - baseline: raw amqplib publisher confirms into a quorum queue, 256 in flight,
 *   persistent messages the size of a real JWS, own vhost → msgs/s;
 * - pipeline: a gateway in RabbitMQ mode (in process); 64 keep-alive mutual-TLS
 *   connections, driven from a worker thread, submit N pre-signed messages →
 *   accepted/s; then, per message, the lag from `accepted` to `delivered` in its
 *   history → p50/p99.
 *
 * `node dist/bench/pipeline.js [messages]` runs it alone; bench/run.ts calls
 * `benchPipeline`. For diagnosis: BENCH_EMBEDDED=1 runs the gateway without the
 * broker (same clients), BENCH_CONNECTIONS sets the client concurrency.
 */
import { Agent, request } from 'node:https';
import { rmSync } from 'node:fs';
import { Writable } from 'node:stream';
import {
  isMainThread,
  parentPort,
  Worker,
  workerData,
  type MessagePort,
} from 'node:worker_threads';
import { pathToFileURL } from 'node:url';
import { connect } from 'amqplib';
import winston from 'winston';
import { startGateway, type Gateway } from '../src/app.js';
import { loadConfig } from '../src/config/index.js';
import { sampleEnvelope } from '../test/fixtures/envelopes.js';
import { createTestVhost } from '../test/helpers/amqp.js';
import { identity, testEnv } from '../test/helpers/gateway.js';
import { getTestPki } from '../test/helpers/pki.js';
import { signer } from '../test/faults/support.js';

const FROM = 'CN-GX-CZ';
const TO = 'VN-LS';
const BASELINE_IN_FLIGHT = 256;
const CLIENT_CONNECTIONS = Number(process.env['BENCH_CONNECTIONS'] ?? 64);
const WARMUP = 256;

export interface PipelineOptions {
  messages: number;
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

/** Raw confirm rate: N persistent publishes of `body`-sized messages, at most 256 unconfirmed. */
async function baselineConfirmRate(bodies: readonly Buffer[]): Promise<number> {
  const vhost = await createTestVhost();
  const conn = await connect(vhost.url);
  try {
    const ch = await conn.createConfirmChannel();
    const queue = 'bench.baseline';
    await ch.assertQueue(queue, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
    let inFlight = 0;
    let failed: unknown;
    let wake: (() => void) | undefined;
    const room = () =>
      inFlight < BASELINE_IN_FLIGHT ? Promise.resolve() : new Promise<void>((r) => (wake = r));
    const t0 = performance.now();
    for (const body of bodies) {
      await room();
      if (failed) throw failed;
      inFlight++;
      ch.publish(
        '',
        queue,
        body,
        { persistent: true, contentType: 'application/jose' },
        (err: unknown) => {
          if (err != null) failed = err;
          inFlight--;
          const w = wake;
          wake = undefined;
          w?.();
        },
      );
    }
    await ch.waitForConfirms();
    const s = (performance.now() - t0) / 1000;
    if (failed) throw failed;
    await ch.deleteQueue(queue);
    await ch.close();
    return bodies.length / s;
  } finally {
    await conn.close().catch(() => {});
    await vhost.cleanup();
  }
}

/** What the client worker gets: the gateway, a client identity, and the pre-signed messages. */
interface ClientJob {
  role: 'casebridge-bench-client';
  url: string;
  cert: string;
  key: string;
  ca: string;
  warm: string[];
  msgs: string[];
  connections: number;
}

type ClientReport =
  | { kind: 'warm'; failures: number }
  | { kind: 'done'; ms: number; failures: number; firstFailure?: string };

/**
 * The agencies' side, run in a worker thread so that client TLS and HTTP work
 * does not share the gateway's event loop (in production they are other hosts).
 * Keep-alive, so TLS handshakes (64 of them, in the warm-up) are not measured.
 */
async function runClient(job: ClientJob, port: MessagePort): Promise<void> {
  const agent = new Agent({
    keepAlive: true,
    maxSockets: job.connections,
    cert: job.cert,
    key: job.key,
    ca: job.ca,
  });
  const url = new URL('/v1/messages', job.url);
  const submit = (jws: string) =>
    new Promise<number>((resolve, reject) => {
      const req = request(
        url,
        {
          method: 'POST',
          agent,
          servername: 'localhost',
          headers: { 'content-type': 'application/jose', 'content-length': Buffer.byteLength(jws) },
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(jws);
    });
  const all = async (list: readonly string[]) => {
    let next = 0;
    let failures = 0;
    let firstFailure: string | undefined;
    const worker = async () => {
      while (next < list.length) {
        const jws = list[next++]!;
        try {
          const status = await submit(jws);
          if (status !== 202) throw new Error(`answered ${status}`);
        } catch (e) {
          failures++;
          firstFailure ??= (e as Error).message;
        }
      }
    };
    await Promise.all(Array.from({ length: job.connections }, worker));
    return { failures, ...(firstFailure === undefined ? {} : { firstFailure }) };
  };
  const warm = await all(job.warm);
  port.postMessage({ kind: 'warm', failures: warm.failures } satisfies ClientReport);
  await new Promise<void>((resolve) => port.once('message', () => resolve()));
  const t0 = performance.now();
  const r = await all(job.msgs);
  port.postMessage({ kind: 'done', ms: performance.now() - t0, ...r } satisfies ClientReport);
  agent.destroy();
}

/** Polls `count` every 10 ms until it reaches `target` (bounded); returns the last value. */
async function waitForCount(
  count: () => Promise<number>,
  target: number,
  timeoutMs: number,
): Promise<number> {
  const until = Date.now() + timeoutMs;
  let n = await count();
  while (n < target && Date.now() < until) {
    await new Promise((r) => setTimeout(r, 10));
    n = await count();
  }
  return n;
}

export async function benchPipeline(opts: PipelineOptions): Promise<Record<string, number>> {
  const n = opts.messages;
  const pki = await getTestPki();
  const sys = await identity(FROM, 'system');
  const sign = signer(sys);

  // Signing is the client's cost: everything is signed before any clock starts.
  const warm = Array.from({ length: WARMUP }, () =>
    sign(sampleEnvelope('evidence.request', { from: FROM, to: TO })),
  );
  const msgs = Array.from({ length: n }, () => {
    const env = sampleEnvelope('evidence.request', { from: FROM, to: TO });
    return { id: env.id, jws: sign(env) };
  });

  const baselineConfirmRate_ = await baselineConfirmRate(
    msgs.map((m) => Buffer.from(m.jws, 'ascii')),
  );

  const vhost = await createTestVhost();
  const env = await testEnv(
    process.env['BENCH_EMBEDDED'] === '1' ? {} : { CASEBRIDGE_AMQP_URL: vhost.url },
  );
  // Production logs at info as JSON; formatting is kept, the bytes are dropped.
  const logger = winston.createLogger({
    level: 'info',
    format: winston.format.json(),
    transports: [
      new winston.transports.Stream({ stream: new Writable({ write: (_c, _e, cb) => cb() }) }),
    ],
  });
  let gw: Gateway | undefined;
  try {
    gw = await startGateway({ config: loadConfig(env), logger });
    const g = gw;
    const job: ClientJob = {
      role: 'casebridge-bench-client',
      url: g.url,
      cert: sys.cert,
      key: sys.key,
      ca: pki.files['trust.pem']!,
      warm,
      msgs: msgs.map((m) => m.jws),
      connections: CLIENT_CONNECTIONS,
    };
    const client = new Worker(new URL(import.meta.url), { workerData: job });
    try {
      const reports: ClientReport[] = [];
      let wake: (() => void) | undefined;
      let crashed: unknown;
      client.on('message', (m: ClientReport) => {
        reports.push(m);
        wake?.();
      });
      client.on('error', (e) => {
        crashed = e;
        wake?.();
      });
      const next = async (): Promise<ClientReport> => {
        while (reports.length === 0 && crashed === undefined)
          await new Promise<void>((r) => (wake = r));
        if (crashed !== undefined) throw crashed;
        return reports.shift()!;
      };
      const delivered = () =>
        g.metrics.delivered.get().then((m) => m.values.reduce((a, v) => a + v.value, 0));
      // Warm-up: opens the 64 connections and warms the JIT; not measured.
      const w = await next();
      if (w.failures > 0) throw new Error(`${w.failures} warm-up submissions failed`);
      await waitForCount(delivered, WARMUP, 30_000);

      const t0 = performance.now();
      client.postMessage('go');
      const done = await next();
      if (done.kind !== 'done' || done.failures > 0)
        throw new Error(
          `${done.kind === 'done' ? done.failures : '?'} submissions failed: ${done.kind === 'done' ? done.firstFailure : ''}`,
        );
      const acceptSeconds = done.ms / 1000;
      const d = await waitForCount(delivered, WARMUP + n, 120_000);
      const deliverSeconds = (performance.now() - t0) / 1000;
      if (d < WARMUP + n) throw new Error(`only ${d - WARMUP} of ${n} delivered`);

      const lags: number[] = [];
      for (const m of msgs) {
        const h = g.store.history(m.id);
        const a = h.find((x) => x.status === 'accepted');
        const dl = h.find((x) => x.status === 'delivered');
        if (a && dl) lags.push(Date.parse(dl.at) - Date.parse(a.at));
      }
      lags.sort((x, y) => x - y);
      const pipelineAcceptRate = n / acceptSeconds;
      return {
        messages: n,
        baselineConfirmRate: Math.round(baselineConfirmRate_),
        pipelineAcceptRate: Math.round(pipelineAcceptRate),
        ratio: Number((pipelineAcceptRate / baselineConfirmRate_).toFixed(3)),
        pipelineDeliveredRate: Math.round(n / deliverSeconds),
        lagP50Ms: percentile(lags, 50),
        lagP99Ms: percentile(lags, 99),
        lagMaxMs: lags[lags.length - 1] ?? NaN,
        jwsBytes: Buffer.byteLength(msgs[0]!.jws),
      };
    } finally {
      await client.terminate();
    }
  } finally {
    await gw?.close().catch(() => {});
    rmSync(env['CASEBRIDGE_DATA_DIR']!, { recursive: true, force: true });
    await vhost.cleanup();
  }
}

if (
  !isMainThread &&
  (workerData as Partial<ClientJob> | undefined)?.role === 'casebridge-bench-client'
) {
  await runClient(workerData as ClientJob, parentPort!);
} else if (
  process.argv[1] !== undefined &&
  import.meta.url === pathToFileURL(process.argv[1]).href
) {
  const messages = Number(process.argv[2] ?? 5000);
  const r = await benchPipeline({ messages });
  console.log(JSON.stringify(r, null, 2));
}
