/**
 * Fault: SIGTERM while a RabbitMQ memory alarm blocks the gateway's publishing
 * connection (a real `casebridge serve` process, RabbitMQ mode). The shutdown ends
 * within CASEBRIDGE_SHUTDOWN_S whatever the broker does; what was not published
 * stays in the outbox and is delivered after the next start.
 *
 * The alarm is shared by every helper using this broker: it is raised as late and
 * lifted as early as possible, and always lifted in `finally`.
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { sampleEnvelope } from '../fixtures/envelopes.js';
import { createTestVhost, rabbitmqctl, type TestVhost } from '../helpers/amqp.js';
import { eventually, identity, testEnv } from '../helpers/gateway.js';
import { getTestPki } from '../helpers/pki.js';
import {
  assertExactlyOnce,
  countDeliveries,
  freePort,
  FROM,
  GatewayProcess,
  keepAliveClient,
  parseEntries,
  readStore,
  signer,
  TO,
} from './support.js';
import { databaseNameOf, dropTestDatabase } from '../helpers/database.js';

const SHUTDOWN_S = 3;

async function metric(adminUrl: string, name: string): Promise<number | undefined> {
  const text = await (await fetch(`${adminUrl}/metrics`)).text();
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : undefined;
}

describe('fault: SIGTERM while the broker blocks the connection (memory alarm)', function () {
  this.timeout(120_000);
  let vhost: TestVhost | undefined;
  let gwp: GatewayProcess | undefined;
  let dataDir: string | undefined;
  let databaseUrl: string | undefined;

  before(async () => {
    vhost = await createTestVhost();
  });
  after(async () => {
    await rabbitmqctl('set_vm_memory_high_watermark', '0.4').catch(() => {});
    await gwp?.term(10_000).catch(() => {});
    await vhost?.cleanup();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    if (databaseUrl !== undefined) await dropTestDatabase(databaseNameOf(databaseUrl));
  });

  it(`exits within CASEBRIDGE_SHUTDOWN_S=${SHUTDOWN_S}; the unpublished stay in the outbox and are delivered after a restart`, async () => {
    const [port, adminPort] = [await freePort(), await freePort()];
    const env = await testEnv({
      CASEBRIDGE_AMQP_URL: vhost!.url,
      CASEBRIDGE_PORT: String(port),
      CASEBRIDGE_ADMIN_PORT: String(adminPort),
      CASEBRIDGE_SHUTDOWN_S: String(SHUTDOWN_S),
    });
    dataDir = env['CASEBRIDGE_DATA_DIR']!;
    databaseUrl = env['CASEBRIDGE_DATABASE_URL'];
    const dir = dataDir;
    const adminUrl = `http://127.0.0.1:${adminPort}`;
    const g = new GatewayProcess(env);
    gwp = g;
    await g.start();
    const pki = await getTestPki();
    const sys = await identity(FROM, 'system');
    const sign = signer(sys);
    const client = keepAliveClient(`https://127.0.0.1:${port}`, sys, pki.files['trust.pem']!);
    const ids = new Set<string>();
    const submitOne = async () => {
      const envl = sampleEnvelope('evidence.request', { from: FROM, to: TO });
      const res = await client.submit(sign(envl));
      assert.equal(res.status, 202, res.text);
      ids.add(envl.id);
    };
    await submitOne();
    await eventually(
      async () => countDeliveries(dir, env['CASEBRIDGE_DATABASE_URL']) === 1,
      15_000,
      'first delivery',
    );

    let elapsedMs: number;
    let code: number | null;
    try {
      await rabbitmqctl('set_vm_memory_high_watermark', 'absolute', '1');
      // The broker blocks a connection once it publishes.
      for (let i = 0; i < 3; i++) await submitOne();
      await eventually(
        async () => (await metric(adminUrl, 'casebridge_broker_blocked')) === 1,
        20_000,
        'casebridge_broker_blocked 1',
      );
      client.close();
      const t0 = performance.now();
      code = await g.term(30_000);
      elapsedMs = performance.now() - t0;
    } finally {
      await rabbitmqctl('set_vm_memory_high_watermark', '0.4');
    }
    assert.equal(code, 0, g.stderrTail);
    // Process exit adds a little to the gateway's own deadline.
    assert.ok(elapsedMs < SHUTDOWN_S * 1000 + 1500, `shutdown took ${Math.round(elapsedMs)} ms`);
    const stopped = await readStore(dir, { databaseUrl: env['CASEBRIDGE_DATABASE_URL'] });
    assert.equal(stopped.outbox, 3, 'the blocked messages are still in the outbox');

    await g.start();
    await eventually(
      async () => countDeliveries(dir, env['CASEBRIDGE_DATABASE_URL']) === ids.size,
      30_000,
      'all delivered after restart',
    );
    assert.equal(await g.term(), 0);
    const snap = await readStore(dir, { databaseUrl: env['CASEBRIDGE_DATABASE_URL'] });
    assertExactlyOnce(ids, snap, parseEntries(snap.entries));
    console.log(`      shutdown with the broker blocked took ${Math.round(elapsedMs)} ms`);
  });
});
