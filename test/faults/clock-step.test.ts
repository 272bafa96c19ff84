/**
 * Fault: the wall clock steps back 5 days under a running gateway (a real
 * `casebridge serve` process under Debian's libfaketime, RabbitMQ mode) while
 * accepted messages wait in the outbox because the broker is unreachable.
 * Delivery order and retries never depend on the wall clock: once the broker is
 * back, every message is delivered promptly and in accept order. The step is
 * recorded (metric and `clock.stepped` entry) and entry timestamps never decrease.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AuditEntry } from '../../src/audit/types.js';
import { generateDevPki, writeDevPki } from '../../src/pki/index.js';
import { sampleEnvelope } from '../fixtures/envelopes.js';
import { BROKER_HOST, BROKER_PORT, createTestVhost, type TestVhost } from '../helpers/amqp.js';
import { eventually, type Identity } from '../helpers/gateway.js';
import {
  assertExactlyOnce,
  countDeliveries,
  freePort,
  FROM,
  GatewayProcess,
  keepAliveClient,
  parseEntries,
  readStoreFile,
  signer,
  TO,
  verifyStoreOffline,
} from './support.js';

const LIBFAKETIME = '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1';
const DAY_MS = 86_400_000;
const EACH = 20;

/** A TCP forwarder to the broker that starts forwarding only when opened: an unreachable broker until then. */
function brokerProxy(port: number) {
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  return {
    open: () =>
      new Promise<void>((resolve) => {
        server = createServer((client) => {
          const upstream = connect(BROKER_PORT, BROKER_HOST);
          sockets.add(client).add(upstream);
          client.pipe(upstream).pipe(client);
          const drop = () => {
            client.destroy();
            upstream.destroy();
          };
          client.on('error', drop).on('close', drop);
          upstream.on('error', drop).on('close', drop);
        });
        server.listen(port, '127.0.0.1', resolve);
      }),
    close() {
      for (const s of sockets) s.destroy();
      server?.close();
    },
  };
}

describe('fault: the wall clock steps back 5 days (libfaketime)', function () {
  this.timeout(120_000);
  let vhost: TestVhost | undefined;
  let gwp: GatewayProcess | undefined;
  let work: string | undefined;
  let proxy: ReturnType<typeof brokerProxy> | undefined;

  before(async function () {
    if (!existsSync(LIBFAKETIME)) this.skip();
    vhost = await createTestVhost();
  });
  after(async () => {
    await gwp?.term(10_000).catch(() => {});
    proxy?.close();
    await vhost?.cleanup();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('delivers every queued message promptly and in order, records the step, and never writes an earlier ts', async () => {
    work = mkdtempSync(join(tmpdir(), 'casebridge-clock-'));
    // Certificates valid on both sides of the step.
    const files = generateDevPki({ gatewayId: 'GW-DEMO', now: new Date(Date.now() - 10 * DAY_MS) });
    writeDevPki(join(work, 'pki'), files);
    const pki = (rel: string) => join(work!, 'pki', rel);
    const clockFile = join(work, 'faketime.rc');
    writeFileSync(clockFile, '+0\n');
    const [port, adminPort, proxyPort] = [await freePort(), await freePort(), await freePort()];
    proxy = brokerProxy(proxyPort);
    const dataDir = join(work, 'data');
    const env = {
      CASEBRIDGE_HOST: '127.0.0.1',
      CASEBRIDGE_PORT: String(port),
      CASEBRIDGE_ADMIN_PORT: String(adminPort),
      CASEBRIDGE_DATA_DIR: dataDir,
      CASEBRIDGE_TLS_CERT: pki('gateway/gateway.crt.pem'),
      CASEBRIDGE_TLS_KEY: pki('gateway/gateway.key.pem'),
      CASEBRIDGE_TRUST: pki('trust.pem'),
      CASEBRIDGE_REGISTRY: pki('registry.json'),
      CASEBRIDGE_LOG_KEY: pki('log/log.key.pem'),
      CASEBRIDGE_DATA_KEY: pki('data/data.key.pem'),
      CASEBRIDGE_CHECKPOINT_MS: '200',
      CASEBRIDGE_AMQP_URL: `amqp://guest:guest@127.0.0.1:${proxyPort}/${encodeURIComponent(vhost!.name)}`,
      // libfaketime: the wall clock follows the file (re-read each second); the monotonic clock is left alone, as NTP leaves it.
      LD_PRELOAD: LIBFAKETIME,
      FAKETIME_TIMESTAMP_FILE: clockFile,
      FAKETIME_CACHE_DURATION: '1',
      FAKETIME_DONT_FAKE_MONOTONIC: '1',
    };
    const adminUrl = `http://127.0.0.1:${adminPort}`;
    gwp = new GatewayProcess(env);
    await gwp.start();

    const sys: Identity = {
      cert: files[`agencies/${FROM}/system.crt.pem`]!,
      key: files[`agencies/${FROM}/system.key.pem`]!,
    };
    const sign = signer(sys);
    const client = keepAliveClient(`https://127.0.0.1:${port}`, sys, files['trust.pem']!);
    const submitAt = async (createdAt: Date) => {
      const envl = sampleEnvelope('evidence.request', {
        from: FROM,
        to: TO,
        createdAt: createdAt.toISOString(),
      });
      const res = await client.submit(sign(envl));
      assert.equal(res.status, 202, res.text);
      return envl.id;
    };
    const early: string[] = [];
    for (let i = 0; i < EACH; i++) early.push(await submitAt(new Date()));

    writeFileSync(clockFile, '-5d\n');
    await eventually(
      async () =>
        /^casebridge_clock_steps_total\{direction="backward"\} 1$/m.test(
          await (await fetch(`${adminUrl}/metrics`)).text(),
        ),
      10_000,
      'the gateway to notice the step',
    );
    const late: string[] = [];
    for (let i = 0; i < EACH; i++) late.push(await submitAt(new Date(Date.now() - 5 * DAY_MS)));

    await proxy.open();
    const opened = Date.now();
    await eventually(
      async () => countDeliveries(dataDir) === 2 * EACH,
      30_000,
      'every message delivered',
    );
    const deliveredMs = Date.now() - opened;
    client.close();
    assert.equal(await gwp.term(), 0, gwp.stderrTail);

    const snap = readStoreFile(dataDir, pki('data/data.key.pem'));
    const entries = parseEntries(snap.entries);
    assertExactlyOnce(new Set([...early, ...late]), snap, entries);
    const queuedAt = new Map(
      entries.filter((e) => e.event === 'message.queued').map((e) => [e.messageId!, e.index]),
    );
    const lastEarly = Math.max(...early.map((id) => queuedAt.get(id)!));
    const firstLate = Math.min(...late.map((id) => queuedAt.get(id)!));
    assert.ok(lastEarly < firstLate, 'messages accepted before the step left first');

    const steps = entries.filter((e: AuditEntry) => e.event === 'clock.stepped');
    assert.equal(steps.length, 1);
    const stepMs = Number(steps[0]!.detail?.['stepMs']);
    assert.ok(stepMs < -4.9 * DAY_MS && stepMs > -5.1 * DAY_MS, `step of ${stepMs} ms`);
    for (let i = 1; i < entries.length; i++) {
      assert.ok(entries[i]!.ts >= entries[i - 1]!.ts, `entry ${i} ts went back`);
    }
    await verifyStoreOffline(snap, files);
    console.log(
      `      ${2 * EACH} messages delivered ${deliveredMs} ms after the broker came back`,
    );
  });
});
