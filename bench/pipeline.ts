/**
 * Pipeline benchmarks (not tests): the gateway's submission path, each figure
 * beside a baseline measured in the same run on the same machine.
 *
 * Baselines:
 * - bare HTTPS: an express endpoint with mutual TLS that only answers 202, same
 *   client, same connections, same ~3.2 KB JWS bodies (see servers.ts);
 * - broker: raw amqplib publisher confirms into a quorum queue, 256 in flight,
 *   persistent messages of the same bodies, own vhost.
 *
 * The gateway runs in a process of its own; the client is a worker thread of
 * this process with 64 keep-alive mutual-TLS connections (load.ts). Every
 * message is pre-signed before a clock starts, except in the soak, which signs
 * at its (low) rate as it goes.
 *
 * Paired rounds: the speed of this shared machine drifts by up to twice within
 * minutes, and a cold endpoint answers at half its warm rate. So each figure
 * judged against a baseline comes from BENCH_ROUNDS rounds (3), each one run of
 * the baseline and then one of the gateway, both warmed up and both processes
 * up throughout; a ratio is the median of the rounds' ratios, with their
 * smallest and largest beside it.
 *
 * BENCH_CONNECTIONS sets the client concurrency (64), BENCH_BATCH_CONNECTIONS
 * the concurrent batches (6), BENCH_SOAK_S / BENCH_SOAK_RATE the soak, BENCH_MAX_BODIES the
 * gateway's cap on open bodies (1024; the production default is 64).
 */
import { rmSync } from 'node:fs';
import { connect } from 'amqplib';
import type { Envelope } from '../src/envelope/types.js';
import { sampleEnvelope } from '../test/fixtures/envelopes.js';
import { createTestVhost, type TestVhost } from '../test/helpers/amqp.js';
import { identity, testEnv, type Identity } from '../test/helpers/gateway.js';
import { getTestPki } from '../test/helpers/pki.js';
import { signer } from '../test/faults/support.js';
import { LoadClient, type Target } from './load.js';
import { startServer, type ServerProcess } from './servers.js';

const FROM = 'CN-GX-CZ';
const TO = 'VN-LS';
const BASELINE_IN_FLIGHT = 256;
const CONNECTIONS = Number(process.env['BENCH_CONNECTIONS'] ?? 64);
/** Below the gateway's cap of concurrent batches (8), which would answer 503. */
const BATCH_CONNECTIONS = Number(process.env['BENCH_BATCH_CONNECTIONS'] ?? 6);
const BATCH_LINES = 100;
/** Requests before any clock starts: enough for V8 to optimise both servers' hot paths. */
const WARMUP = 2000;
const ROUNDS = Math.max(1, Number(process.env['BENCH_ROUNDS'] ?? 3));
const RSS_SAMPLE_MS = 5000;
/** protocol §8 default of CASEBRIDGE_MAX_BYTES, the size of a flood request. */
const MAX_BYTES = 1024 * 1024;

const SINGLE: Target = { path: '/v1/messages', contentType: 'application/jose', expect: 202 };
const BATCH: Target = {
  path: '/v1/messages/batch',
  contentType: 'application/x-ndjson',
  expect: 200,
  lineStatus: 202,
};

export interface PipelineSizes {
  /** Messages per measured phase. */
  messages: number;
  soakSeconds: number;
  soakWarmSeconds: number;
  floodSeconds: number;
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

const round = (v: number, digits = 3) => Number(v.toFixed(digits));
const median = (xs: readonly number[]) =>
  percentile(
    xs.slice().sort((a, b) => a - b),
    50,
  );
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `count` every 20 ms until it reaches `target` (bounded); returns the last value. */
async function waitForCount(count: () => Promise<number>, target: number, timeoutMs: number) {
  const until = Date.now() + timeoutMs;
  let n = await count();
  while (n < target && Date.now() < until) {
    await sleep(20);
    n = await count();
  }
  return n;
}

// ---- shared material, made once per run ----------------------------------------

interface Material {
  sys: Identity;
  ca: string;
  sign: (env: Envelope) => string;
}

let material: Promise<Material> | undefined;
function getMaterial(): Promise<Material> {
  material ??= (async () => {
    const pki = await getTestPki();
    const sys = await identity(FROM, 'system');
    return { sys, ca: pki.files['trust.pem']!, sign: signer(sys) };
  })();
  return material;
}

/** `n` fresh signed messages (new ids, so none is a replay). */
async function signed(n: number): Promise<{ id: string; jws: string }[]> {
  const { sign } = await getMaterial();
  return Array.from({ length: n }, () => {
    const env = sampleEnvelope('evidence.request', { from: FROM, to: TO });
    return { id: env.id, jws: sign(env) };
  });
}

async function loadClient(server: ServerProcess, connections = CONNECTIONS): Promise<LoadClient> {
  const { sys, ca } = await getMaterial();
  return new LoadClient({ url: server.url, cert: sys.cert, key: sys.key, ca, connections });
}

/** A gateway process with a fresh data directory (and vhost in RabbitMQ mode). */
async function gatewayProcess(mode: 'embedded' | 'rabbitmq', extra: Record<string, string> = {}) {
  let vhost: TestVhost | undefined;
  if (mode === 'rabbitmq') vhost = await createTestVhost();
  const env = await testEnv({
    ...(vhost ? { CASEBRIDGE_AMQP_URL: vhost.url } : {}),
    CASEBRIDGE_LOG_LEVEL: 'info',
    // The production default (the tests sign every 100 ms).
    CASEBRIDGE_CHECKPOINT_MS: '500',
    // One bench principal sends at the gateway's peak: above the per-principal rate limit
    // and the default cap on open bodies, which are measured by the flood, not here.
    CASEBRIDGE_RATE_PER_MIN: '1000000',
    CASEBRIDGE_MAX_BODIES: process.env['BENCH_MAX_BODIES'] ?? '1024',
    ...extra,
  });
  const server = await startServer('gateway', env);
  return {
    server,
    async stop() {
      await server.stop().catch(() => {});
      rmSync(env['CASEBRIDGE_DATA_DIR']!, { recursive: true, force: true });
      await vhost?.cleanup();
    },
  };
}

// ---- baselines ---------------------------------------------------------------

/** The bare HTTPS + mTLS endpoint and a client of its own, warmed up. */
async function bareEndpoint() {
  const env = await testEnv();
  const server = await startServer('bare', env);
  const client = await loadClient(server);
  const stop = async () => {
    await client.close();
    await server.stop();
    rmSync(env['CASEBRIDGE_DATA_DIR']!, { recursive: true, force: true });
  };
  try {
    await client.ok({
      cmd: 'closed',
      target: SINGLE,
      bodies: (await signed(WARMUP)).map((m) => m.jws),
    });
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    /** Requests per second for `messages` fresh bodies. */
    async rate(messages: number) {
      const bodies = (await signed(messages)).map((m) => m.jws);
      const r = await client.ok({ cmd: 'closed', target: SINGLE, bodies });
      return messages / (r.ms / 1000);
    },
    stop,
  };
}

/** Raw confirm rate: persistent publishes of the JWS bodies, at most 256 unconfirmed. */
async function measureBrokerConfirms(messages: number): Promise<number> {
  const bodies = (await signed(messages)).map((m) => Buffer.from(m.jws, 'ascii'));
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

let broker: Promise<number> | undefined;
/** One raw confirm figure per run, for the figures that are not paired (PostgreSQL, `ratio`). */
export function brokerConfirmRate(messages: number): Promise<number> {
  broker ??= measureBrokerConfirms(messages);
  return broker;
}

// ---- single messages -----------------------------------------------------------

interface TimedRun {
  rate: number;
  cpuMsPerMessage: number;
  /** Busy time of the gateway's main event loop per message. */
  loopMsPerMessage: number;
  /** performance.now() when the first request went out. */
  startedAt: number;
}

interface PeakRun extends TimedRun {
  ids: string[];
}

/** One closed-loop run of `bodies` carrying `messages` messages, with the gateway's CPU and loop time. */
async function timed(
  server: ServerProcess,
  client: LoadClient,
  target: Target,
  bodies: string[],
  messages: number,
): Promise<TimedRun> {
  const cpu0 = server.cpuMs();
  const loop0 = await server.loopMs();
  const startedAt = performance.now();
  const r = await client.ok({ cmd: 'closed', target, bodies });
  return {
    startedAt,
    rate: messages / (r.ms / 1000),
    cpuMsPerMessage: (server.cpuMs() - cpu0) / messages,
    loopMsPerMessage: ((await server.loopMs()) - loop0) / messages,
  };
}

/**
 * Waits (off any clock) until the gateway has delivered `total` messages in all;
 * the rate of the run's `messages` from its first request to the last delivery.
 */
async function deliveredRate(
  server: ServerProcess,
  run: TimedRun,
  messages: number,
  total: number,
): Promise<number> {
  const d = await waitForCount(() => server.delivered(), total, 120_000);
  if (d < total) throw new Error(`only ${d} of ${total} delivered`);
  return messages / ((performance.now() - run.startedAt) / 1000);
}

/** `messages` single submissions as fast as 64 connections go. */
async function peak(server: ServerProcess, client: LoadClient, messages: number): Promise<PeakRun> {
  const msgs = await signed(messages);
  const bodies = msgs.map((m) => m.jws);
  return { ...(await timed(server, client, SINGLE, bodies, messages)), ids: msgs.map((m) => m.id) };
}

interface Paired<T> {
  baselines: number[];
  runs: T[];
  /** The run of the median ratio: its figures go together. */
  median: T;
  ratio: number;
  ratioMin: number;
  ratioMax: number;
}

/**
 * ROUNDS rounds of one baseline run, then one measured run; both sides already
 * warm. Prints each round, since the spread is the figure's error bar.
 */
async function paired<T extends { rate: number }>(
  label: string,
  baseline: () => Promise<number>,
  measured: () => Promise<T>,
): Promise<Paired<T>> {
  const baselines: number[] = [];
  const runs: T[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    baselines.push(await baseline());
    runs.push(await measured());
  }
  const ratios = runs.map((r, i) => r.rate / baselines[i]!);
  const order = ratios.map((_, i) => i).sort((a, b) => ratios[a]! - ratios[b]!);
  const mid = order[Math.floor((order.length - 1) / 2)]!;
  process.stderr.write(
    `  ${label} rounds (baseline/measured per s): ` +
      runs.map((r, i) => `${Math.round(baselines[i]!)}/${Math.round(r.rate)}`).join(', ') +
      '\n',
  );
  return {
    baselines,
    runs,
    median: runs[mid]!,
    ratio: ratios[mid]!,
    ratioMin: Math.min(...ratios),
    ratioMax: Math.max(...ratios),
  };
}

/**
 * Single messages against the bare endpoint, in paired rounds; the gateway warmed
 * up first. `settle` runs after each gateway run, off its clock and before the
 * next baseline (RabbitMQ mode: until the round is delivered).
 */
async function singleAgainstBare<T extends PeakRun>(
  server: ServerProcess,
  client: LoadClient,
  messages: number,
  settle: (run: PeakRun) => Promise<T>,
): Promise<Paired<T>> {
  await client.ok({
    cmd: 'closed',
    target: SINGLE,
    bodies: (await signed(WARMUP)).map((m) => m.jws),
  });
  const bare = await bareEndpoint();
  try {
    return await paired(
      'single',
      () => bare.rate(messages),
      async () => settle(await peak(server, client, messages)),
    );
  } finally {
    await bare.stop();
  }
}

function singleFigures(p: Paired<PeakRun>): Record<string, number> {
  return {
    rounds: p.runs.length,
    bare_https_rate: Math.round(median(p.baselines)),
    accept_rate: Math.round(p.median.rate),
    ratio_vs_bare_https: round(p.ratio),
    ratio_min: round(p.ratioMin),
    ratio_max: round(p.ratioMax),
    gateway_cpu_ms_per_msg: round(p.median.cpuMsPerMessage),
    gateway_loop_ms_per_msg: round(p.median.loopMsPerMessage),
  };
}

export async function benchEmbedded(sizes: PipelineSizes): Promise<Record<string, number>> {
  const gw = await gatewayProcess('embedded');
  const client = await loadClient(gw.server);
  try {
    const p = await singleAgainstBare(gw.server, client, sizes.messages, async (r) => r);
    return { messages: sizes.messages, ...singleFigures(p) };
  } finally {
    await client.close();
    await gw.stop();
  }
}

/**
 * RabbitMQ mode: the peak single-message rate (as a ratio to the bare endpoint
 * and, as before, to raw broker confirms), the lag to delivery, then a run at
 * half the peak rate for the latency of the 202 and the accept→delivery lag.
 */
export async function benchRabbitmq(sizes: PipelineSizes): Promise<Record<string, number>> {
  const n = sizes.messages;
  const confirmRate = await brokerConfirmRate(n);
  const gw = await gatewayProcess('rabbitmq');
  const client = await loadClient(gw.server);
  try {
    let sent = WARMUP;
    const p = await singleAgainstBare(gw.server, client, n, async (run) => {
      sent += n;
      return { ...run, deliveredRate: await deliveredRate(gw.server, run, n, sent) };
    });
    const lags = (await gw.server.lags(p.median.ids)).sort((a, b) => a - b);

    const half = p.median.rate / 2;
    const msgs = await signed(n);
    const r = await client.ok({
      cmd: 'open',
      target: SINGLE,
      rate: half,
      bodies: msgs.map((m) => m.jws),
    });
    const d2 = await waitForCount(() => gw.server.delivered(), sent + n, 120_000);
    if (d2 < sent + n) throw new Error(`only ${d2 - sent} of ${n} delivered at half rate`);
    const latency = r.latencies!.slice().sort((a, b) => a - b);
    const halfLags = (await gw.server.lags(msgs.map((m) => m.id))).sort((a, b) => a - b);
    return {
      messages: n,
      // Today's figures, as before.
      baselineConfirmRate: Math.round(confirmRate),
      pipelineAcceptRate: Math.round(p.median.rate),
      ratio: round(p.median.rate / confirmRate),
      pipelineDeliveredRate: Math.round(p.median.deliveredRate),
      lagP50Ms: percentile(lags, 50),
      lagP99Ms: percentile(lags, 99),
      lagMaxMs: lags[lags.length - 1] ?? NaN,
      jwsBytes: Buffer.byteLength(msgs[0]!.jws),
      // Against the bare endpoint, and at half the peak rate.
      ...singleFigures(p),
      half_rate: Math.round(half),
      achieved_half_rate: Math.round(r.sent / (r.ms / 1000)),
      p50_ms_at_half_rate: round(percentile(latency, 50), 2),
      p95_ms_at_half_rate: round(percentile(latency, 95), 2),
      p99_ms_at_half_rate: round(percentile(latency, 99), 2),
      lag_p50_ms_at_half_rate: percentile(halfLags, 50),
      lag_p95_ms_at_half_rate: percentile(halfLags, 95),
      lag_p99_ms_at_half_rate: percentile(halfLags, 99),
    };
  } finally {
    await client.close();
    await gw.stop();
  }
}

// ---- batches ---------------------------------------------------------------------

/** RabbitMQ mode, batches of 100 lines, as a ratio to raw broker confirms. */
export async function benchBatch(sizes: PipelineSizes): Promise<Record<string, number>> {
  const n = Math.ceil(sizes.messages / BATCH_LINES) * BATCH_LINES;
  const gw = await gatewayProcess('rabbitmq');
  const client = await loadClient(gw.server, BATCH_CONNECTIONS);
  const batches = (msgs: { jws: string }[]) => {
    const out: string[] = [];
    for (let i = 0; i < msgs.length; i += BATCH_LINES) {
      out.push(
        msgs
          .slice(i, i + BATCH_LINES)
          .map((m) => m.jws + '\n')
          .join(''),
      );
    }
    return out;
  };
  let sent = WARMUP;
  /** One timed batch run; delivery is awaited outside the accept clock, before the next round. */
  const run = async () => {
    const figures = await timed(gw.server, client, BATCH, batches(await signed(n)), n);
    sent += n;
    return { ...figures, deliveredRate: await deliveredRate(gw.server, figures, n, sent) };
  };
  try {
    await client.ok({ cmd: 'closed', target: BATCH, bodies: batches(await signed(WARMUP)) });
    await waitForCount(() => gw.server.delivered(), WARMUP, 60_000);
    const p = await paired('batch', () => measureBrokerConfirms(n), run);
    const confirmRate = median(p.baselines);
    return {
      messages: n,
      batch_lines: BATCH_LINES,
      concurrent_batches: BATCH_CONNECTIONS,
      rounds: p.runs.length,
      broker_confirm_rate: Math.round(confirmRate),
      accept_rate: Math.round(p.median.rate),
      ratio_vs_broker: round(p.ratio),
      ratio_min: round(p.ratioMin),
      ratio_max: round(p.ratioMax),
      delivered_rate: Math.round(p.median.deliveredRate),
      delivered_ratio_vs_broker: round(
        median(p.runs.map((r, i) => r.deliveredRate / p.baselines[i]!)),
      ),
      gateway_cpu_ms_per_msg: round(p.median.cpuMsPerMessage),
      gateway_loop_ms_per_msg: round(p.median.loopMsPerMessage),
    };
  } finally {
    await client.close();
    await gw.stop();
  }
}

// ---- memory ---------------------------------------------------------------------

/**
 * RabbitMQ mode at a steady rate for `soakSeconds`, signing as it goes; RSS of the
 * gateway every 5 s after the warm-up. Growth compares the median of the last
 * three samples with the median of the first three.
 */
export async function benchSoak(sizes: PipelineSizes): Promise<Record<string, number>> {
  const rate = Number(process.env['BENCH_SOAK_RATE'] ?? 200);
  const gw = await gatewayProcess('rabbitmq');
  const client = await loadClient(gw.server);
  try {
    const running = client.ok({
      cmd: 'soak',
      target: SINGLE,
      rate,
      seconds: sizes.soakWarmSeconds + sizes.soakSeconds,
      from: FROM,
      to: TO,
    });
    await sleep(sizes.soakWarmSeconds * 1000);
    const samples: number[] = [];
    const until = performance.now() + sizes.soakSeconds * 1000;
    while (performance.now() < until) {
      samples.push(gw.server.rssMb());
      await sleep(RSS_SAMPLE_MS);
    }
    const r = await running;
    samples.push(gw.server.rssMb());
    process.stderr.write(
      `  soak RSS (MiB, every 5 s): ${samples.map((s) => s.toFixed(0)).join(' ')}\n`,
    );
    const median3 = (xs: number[]) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const start = median3(samples.slice(0, 3));
    const end = median3(samples.slice(-3));
    return {
      seconds: sizes.soakSeconds,
      rate,
      messages: r.sent,
      samples: samples.length,
      rss_start_mb: round(start, 1),
      rss_end_mb: round(end, 1),
      rss_max_mb: round(Math.max(...samples), 1),
      rss_growth_ratio: round((end - start) / start),
    };
  } finally {
    await client.close();
    await gw.stop();
  }
}

/**
 * 64 connections sending maximum-size requests as fast as they are answered:
 * single bodies of CASEBRIDGE_MAX_BYTES, then batches of 16 × that. Peak RSS of
 * the gateway process (VmHWM), which started fresh for this.
 */
export async function benchFlood(sizes: PipelineSizes): Promise<Record<string, number>> {
  const gw = await gatewayProcess('embedded', { CASEBRIDGE_MAX_BYTES: String(MAX_BYTES) });
  const client = await loadClient(gw.server);
  try {
    const idle = gw.server.rssMb();
    // Printable ASCII, so each body is read whole before it is refused as MALFORMED.
    const single = 'A'.repeat(MAX_BYTES);
    const s = await client.run({
      cmd: 'flood',
      target: SINGLE,
      body: single,
      seconds: sizes.floodSeconds,
    });
    const afterSingle = gw.server.peakRssMb();
    const line = 'A'.repeat(MAX_BYTES - 1) + '\n';
    const batch = line.repeat(16);
    const b = await client.run({
      cmd: 'flood',
      target: BATCH,
      body: batch,
      seconds: sizes.floodSeconds,
    });
    process.stderr.write(
      `  flood answers: single ${JSON.stringify(s.statuses)} ${s.firstFailure ?? ''}, ` +
        `batch ${JSON.stringify(b.statuses)} ${b.firstFailure ?? ''}\n`,
    );
    return {
      connections: CONNECTIONS,
      request_bytes_single: MAX_BYTES,
      request_bytes_batch: MAX_BYTES * 16,
      requests_single: s.sent,
      requests_batch: b.sent,
      transport_failures: s.failures + b.failures,
      idle_rss_mb: round(idle, 1),
      peak_rss_single_mb: round(afterSingle, 1),
      peak_rss_mb: round(gw.server.peakRssMb(), 1),
    };
  } finally {
    await client.close();
    await gw.stop();
  }
}

/** For the PostgreSQL benches (postgres.ts), which drive several gateways the same way. */
export { CONNECTIONS, loadClient, signed, SINGLE, WARMUP };
