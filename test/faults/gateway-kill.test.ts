/**
 * Fault: `kill -9` of the gateway process while agencies submit, several times,
 * each time restarted on the same data directory (`casebridge serve`, RabbitMQ
 * mode). protocol §3: a 202 means durably stored; protocol §5.2: nothing accepted is
 * lost or delivered twice. A request cut by the kill may or may not have been
 * accepted: the same bytes are submitted again after the restart and idempotency
 * answers 200 (it was) or 202 (it was not).
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createPublicKey } from 'node:crypto';
import { rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { vkeyFor } from '../../src/audit/checkpoint.js';
import { exportBundle, type AuditLogReader } from '../../src/audit/export.js';
import { verifyBundle } from '../../src/audit/verify.js';
import { parsePemChain } from '../../src/pki/pem.js';
import { DEAD_QUEUE, inboxQueue } from '../../src/transport/topology.js';
import { sampleEnvelope } from '../fixtures/envelopes.js';
import { createTestVhost, queueDepth, type TestVhost } from '../helpers/amqp.js';
import { eventually, identity, testEnv } from '../helpers/gateway.js';
import { getTestPki } from '../helpers/pki.js';
import {
  assertContiguous,
  assertExactlyOnce,
  countDeliveries,
  eventCounts,
  freePort,
  FROM,
  keepAliveClient,
  parseEntries,
  readStoreFile,
  signer,
  sleep,
  TO,
  type KeepAliveClient,
} from './support.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
const KILLS = 4;
const WORKERS = 8;
/** Uptime before each kill is drawn from [MIN, MIN + SPREAD) ms of submitting. */
const UPTIME_MIN_MS = 400;
const UPTIME_SPREAD_MS = 1200;
/** Hard cap on the number of messages, whatever the speed. */
const MAX_MESSAGES = 6000;

/** One `casebridge serve` child; restartable on the same env. */
class GatewayProcess {
  private child: ChildProcess | undefined;
  private exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }> | undefined;
  stderrTail = '';
  starts = 0;

  constructor(private readonly env: Record<string, string>) {}

  /** Spawns and resolves once the gateway logged that it listens. */
  async start(timeoutMs = 30_000): Promise<void> {
    const child = spawn(process.execPath, [MAIN, 'serve'], {
      env: { ...process.env, ...this.env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    this.child = child;
    this.starts++;
    this.exited = new Promise((resolve) =>
      child.on('exit', (code, signal) => resolve({ code, signal })),
    );
    let buffered = '';
    const ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`gateway not ready in ${timeoutMs} ms:\n${this.stderrTail}`)),
        timeoutMs,
      );
      child.stderr!.on('data', (c: Buffer) => {
        const text = c.toString('utf8');
        this.stderrTail = (this.stderrTail + text).slice(-8000);
        buffered += text;
        if (buffered.includes('"message":"casebridge started"')) {
          clearTimeout(timer);
          buffered = '';
          resolve();
        }
      });
      void this.exited!.then(({ code, signal }) => {
        clearTimeout(timer);
        reject(new Error(`gateway exited during start (${code}/${signal}):\n${this.stderrTail}`));
      });
    });
    await ready;
  }

  async kill9(): Promise<void> {
    const c = this.child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    c.kill('SIGKILL');
    const { signal } = await this.exited!;
    assert.equal(signal, 'SIGKILL');
  }

  /** Clean shutdown; resolves with the exit code. */
  async term(timeoutMs = 30_000): Promise<number | null> {
    const c = this.child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return c?.exitCode ?? null;
    c.kill('SIGTERM');
    const timer = setTimeout(() => c.kill('SIGKILL'), timeoutMs);
    const { code } = await this.exited!;
    clearTimeout(timer);
    return code;
  }
}

/** The audit tables of a closed gateway's file, as the exporter reads them. */
function fileReader(snap: ReturnType<typeof readStoreFile>): AuditLogReader {
  return {
    entries: (start, end) => snap.entries.slice(start, end),
    checkpoints: (from, to) => snap.checkpoints.filter((c) => c.size >= from && c.size <= to),
    latestCheckpoint: () => snap.checkpoints[snap.checkpoints.length - 1],
  };
}

describe('fault: gateway process killed with SIGKILL and restarted (protocol §3, §5.2, §6)', function () {
  this.timeout(150_000);
  let vhost: TestVhost | undefined;
  let gwp: GatewayProcess | undefined;
  let dataDir: string | undefined;
  let client: KeepAliveClient | undefined;

  before(async () => {
    vhost = await createTestVhost();
  });
  after(async () => {
    client?.close();
    await gwp?.term(10_000).catch(() => {});
    await vhost?.cleanup();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it('every 202/200 is delivered exactly once across kills; the audit log stays consistent and verifies', async () => {
    const url = vhost!.url;
    const [port, adminPort] = [await freePort(), await freePort()];
    const env = await testEnv({
      CASEBRIDGE_AMQP_URL: url,
      CASEBRIDGE_PORT: String(port),
      CASEBRIDGE_ADMIN_PORT: String(adminPort),
      CASEBRIDGE_LOG_LEVEL: 'info',
    });
    dataDir = env['CASEBRIDGE_DATA_DIR']!;
    const dir = dataDir;
    gwp = new GatewayProcess(env);
    const g = gwp;
    await g.start();

    const pki = await getTestPki();
    const sys = await identity(FROM, 'system');
    const sign = signer(sys);
    client = keepAliveClient(`https://127.0.0.1:${port}`, sys, pki.files['trust.pem']!, WORKERS);
    const c = client;

    // Per id: the bytes, and what the gateway said (the 202 body), if it said anything.
    const sent = new Map<string, string>();
    const accepted = new Map<string, { status: number; body: string }>();
    const uncertain = new Set<string>();
    const unexpected: string[] = [];
    /** The last few ids answered 202 before each kill: the most likely to be lost if 202 came before the commit. */
    const lastBeforeKill: string[] = [];
    let recent: string[] = [];

    let up = true;
    const upWaiters: Array<() => void> = [];
    const whenUp = () => (up ? Promise.resolve() : new Promise<void>((r) => upWaiters.push(r)));
    let producing = true;
    let acceptedSinceStart = 0;

    const worker = async () => {
      while (producing && sent.size < MAX_MESSAGES) {
        await whenUp();
        if (!producing) break;
        const envl = sampleEnvelope('evidence.request', { from: FROM, to: TO });
        const jws = sign(envl);
        sent.set(envl.id, jws);
        try {
          const res = await c.submit(jws);
          if (res.status === 202) {
            accepted.set(envl.id, { status: 202, body: res.text });
            acceptedSinceStart++;
            recent.push(envl.id);
            if (recent.length > 16) recent = recent.slice(-8);
          } else unexpected.push(`${envl.id}: ${res.status} ${res.text.slice(0, 200)}`);
        } catch {
          uncertain.add(envl.id); // cut by the kill (or refused while it was down)
        }
      }
    };
    const workers = Promise.all(Array.from({ length: WORKERS }, worker));

    const t0 = Date.now();
    const downtimes: number[] = [];
    for (let k = 0; k < KILLS; k++) {
      const uptime = UPTIME_MIN_MS + Math.floor(Math.random() * UPTIME_SPREAD_MS);
      await eventually(() => acceptedSinceStart >= 10, 20_000, `submissions after start ${k}`);
      await sleep(uptime);
      lastBeforeKill.push(...recent.slice(-4));
      up = false;
      const tKill = Date.now();
      await g.kill9();
      acceptedSinceStart = 0;
      await g.start();
      downtimes.push(Date.now() - tKill);
      up = true;
      for (const w of upWaiters.splice(0)) w();
    }
    // Submit for a while on the last incarnation, then stop.
    await eventually(() => acceptedSinceStart >= 50, 20_000, 'submissions after the last restart');
    producing = false;
    await workers;
    const submittedMs = Date.now() - t0;
    assert.deepEqual(unexpected.slice(0, 10), [], 'only 202 or transport errors while submitting');
    assert.equal(g.starts, KILLS + 1);

    // A cut request is settled by resubmitting its exact bytes: 200 (it was accepted) or 202.
    let replayed200 = 0;
    for (const id of uncertain) {
      const res = await c.submit(sent.get(id)!);
      assert.ok(
        res.status === 200 || res.status === 202,
        `resubmission of ${id}: ${res.status} ${res.text}`,
      );
      if (res.status === 200) replayed200++;
      accepted.set(id, { status: res.status, body: res.text });
    }
    // A 202 just before a kill was durable: the replay answers 200 with the original body.
    for (const id of lastBeforeKill) {
      const res = await c.submit(sent.get(id)!);
      assert.equal(res.status, 200, `replay of ${id} acknowledged before a kill`);
      assert.deepEqual(
        JSON.parse(res.text),
        JSON.parse(accepted.get(id)!.body),
        `replay body of ${id}`,
      );
    }
    const ids = new Set(accepted.keys());
    assert.equal(ids.size, sent.size, 'every message sent ended with a 202 or 200');

    await eventually(
      () => countDeliveries(dir) >= ids.size,
      60_000,
      'every accepted message delivered',
    );
    await eventually(
      async () => (await queueDepth(url, inboxQueue(TO))) === 0,
      20_000,
      'the inbox queue to drain',
    );
    await sleep(500); // a late redelivery would show up as a second entry below
    const code = await g.term();
    assert.equal(code, 0, `clean shutdown exit code:\n${g.stderrTail}`);

    // Everything from the file, after the final clean shutdown.
    const snap = readStoreFile(dir);
    const stored = snap.entries;
    const entries = parseEntries(stored);
    assertContiguous(stored, entries);
    assertExactlyOnce(ids, snap, entries);
    assert.equal(snap.outbox, 0, 'outbox empty');
    for (const [id, a] of accepted) {
      const m = snap.messages.get(id)!;
      const body = JSON.parse(a.body) as { logIndex: number; digest: string };
      assert.equal(m.logIndex, body.logIndex, `${id}: stored logIndex matches the answered one`);
      assert.equal(m.digest, body.digest);
      const e = entries[body.logIndex]!;
      assert.equal(e.event, 'message.accepted');
      assert.equal(e.messageId, id, `entry ${body.logIndex} is the acceptance of ${id}`);
    }
    const acceptedIds = [
      ...(eventCounts(entries).get('message.accepted') ?? new Map<string, number>()),
    ];
    assert.ok(
      acceptedIds.every(([, n]) => n === 1),
      'each message.accepted id appears once',
    );
    assert.equal(await queueDepth(url, inboxQueue(TO)), 0, 'inbox queue empty');
    assert.equal(await queueDepth(url, DEAD_QUEUE), 0, 'nothing dead-lettered');

    // Offline: export the whole log from the file and verify it (protocol §6.5).
    const last = snap.checkpoints[snap.checkpoints.length - 1];
    assert.equal(last?.size, stored.length, 'the shutdown signed a checkpoint over the whole log');
    const logKey = createPublicKey(pki.files['log/log.key.pem']!);
    const vkey = vkeyFor('casebridge/GW-DEMO', logKey);
    const anchors = parsePemChain(pki.files['trust.pem']!).map((x) => x.toString());
    const lines: string[] = [];
    for await (const line of exportBundle(
      {
        store: fileReader(snap),
        origin: 'casebridge/GW-DEMO',
        vkey,
        gatewayChain: parsePemChain(pki.files['gateway/gateway.crt.pem']!).map((x) => x.toString()),
        trustAnchors: anchors,
        messagesFor: (list) =>
          list.flatMap((id) => {
            const m = snap.messages.get(id);
            if (!m) return [];
            return [
              { id, jws: m.jws, receipt: (JSON.parse(m.response) as { receipt: string }).receipt },
            ];
          }),
      },
      { messages: true },
    )) {
      lines.push(line);
    }
    const report = await verifyBundle(lines, {
      checkSignatures: true,
      vkey,
      trustAnchors: anchors,
    });
    assert.equal(report.ok, true, `bundle verification: ${JSON.stringify(report.firstFailure)}`);
    assert.equal(report.entries, stored.length);

    console.log(
      `      ${ids.size} messages over ${KILLS} kills in ${submittedMs} ms (restart ${downtimes.join('/')} ms); ` +
        `${uncertain.size} cut requests resubmitted (${replayed200} had been accepted); ` +
        `${lastBeforeKill.length} pre-kill 202s replayed as 200; ${stored.length} audit entries, ` +
        `${snap.checkpoints.length} checkpoints; bundle verified`,
    );
  });
});
