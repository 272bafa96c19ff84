/**
 * Fault: the broker goes away (`rabbitmqctl stop_app`) while agencies keep
 * submitting to a gateway in RabbitMQ mode, and comes back (`start_app`).
 * protocol §3: every submission is still accepted (the outbox is the source of
 * truth); protocol §5.2: afterwards every message is delivered exactly once.
 *
 * stop_app takes the WHOLE broker down, for every vhost: `after` restarts it
 * whatever happened.
 */
import assert from 'node:assert/strict';
import { sampleEnvelope } from '../fixtures/envelopes.js';
import {
  createTestVhost,
  queueDepth,
  startBroker,
  stopBroker,
  waitForPort,
  type TestVhost,
} from '../helpers/amqp.js';
import {
  eventually,
  identity,
  startTestGateway,
  storeCounts,
  type TestGateway,
} from '../helpers/gateway.js';
import { getTestPki } from '../helpers/pki.js';
import { DEAD_QUEUE, inboxQueue } from '../../src/transport/topology.js';
import {
  assertContiguous,
  assertExactlyOnce,
  FROM,
  keepAliveClient,
  parseEntries,
  pool,
  readStore,
  signer,
  sleep,
  TO,
  type KeepAliveClient,
} from './support.js';

const MESSAGES = 1000;
const CONCURRENCY = 16;
/** Submissions pace themselves so that a good share of them falls inside the outage. */
const PACE_MS = 40;

describe('fault: broker stopped during submissions (protocol §3, §5.2)', function () {
  this.timeout(150_000);
  let vhost: TestVhost | undefined;
  let t: TestGateway | undefined;
  let client: KeepAliveClient | undefined;
  let brokerStopped = false;

  before(async () => {
    vhost = await createTestVhost();
  });

  after(async () => {
    client?.close();
    // The broker must be up again for everyone else, whatever happened above.
    if (brokerStopped) await startBroker().catch(() => {});
    await waitForPort().catch(() => {});
    await t?.stop().catch(() => {});
    await vhost?.cleanup();
  });

  it('accepts every submission through stop_app/start_app and delivers each message exactly once', async () => {
    const url = vhost!.url;
    // One client sends 1,000 messages in seconds: past the default rate limit on purpose.
    t = await startTestGateway({ CASEBRIDGE_AMQP_URL: url, CASEBRIDGE_RATE_PER_MIN: '100000' });
    const gw = t.gw;
    const pki = await getTestPki();
    const sign = signer(await identity(FROM, 'system'));
    const jwss = Array.from({ length: MESSAGES }, () => {
      const env = sampleEnvelope('evidence.request', { from: FROM, to: TO });
      return { id: env.id, jws: sign(env) };
    });
    client = keepAliveClient(
      gw.url,
      await identity(FROM, 'system'),
      pki.files['trust.pem']!,
      CONCURRENCY,
    );
    const c = client;

    // Phase gates: the first share before the outage, the last share only after recovery.
    let phase: 'before' | 'outage' | 'after' = 'before';
    let outageObserved: () => void = () => {};
    const outageSeen = new Promise<void>((r) => (outageObserved = r));
    let recovered: () => void = () => {};
    const recoveredP = new Promise<void>((r) => (recovered = r));

    const statuses = new Map<number, number>();
    let acceptedWhileDisconnected = 0;
    let done = 0;
    const submitting = pool(jwss, CONCURRENCY, async ({ id, jws }, i) => {
      if (i >= 0.4 * MESSAGES) await outageSeen;
      if (i >= 0.75 * MESSAGES) await recoveredP;
      const res = await c.submit(jws);
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      assert.equal(
        res.status,
        202,
        `submission ${i} (${id}) during phase ${phase}: ${res.status} ${res.text}`,
      );
      if (!gw.transport.status().connected) acceptedWhileDisconnected++;
      done++;
      await sleep(PACE_MS);
    });
    // A failed submission must fail the test now, not after the outage choreography.
    const failed = submitting.then(
      () => undefined,
      (e: unknown) => e,
    );

    const tStart = Date.now();
    await eventually(async () => done >= 0.2 * MESSAGES, 30_000, 'the first submissions');
    brokerStopped = true;
    phase = 'outage';
    const tStop = Date.now();
    await stopBroker();
    await eventually(
      async () => !gw.transport.status().connected,
      15_000,
      'the gateway to notice the outage',
    );
    outageObserved();
    // Keep submitting into the outbox while the broker is down.
    await eventually(async () => done >= 0.6 * MESSAGES, 60_000, 'submissions during the outage');
    const lagDuringOutage = await gw.store.outboxLag();
    const tRestart = Date.now();
    await startBroker();
    brokerStopped = false;
    phase = 'after';
    const tUp = Date.now();
    recovered();
    const err = await failed;
    if (err !== undefined) throw err;
    const tSubmitted = Date.now();

    assert.deepEqual([...statuses], [[202, MESSAGES]], 'every submission answered 202');
    assert.ok(lagDuringOutage > 0, 'messages waited in the outbox during the outage');
    assert.ok(
      acceptedWhileDisconnected >= 50,
      `accepted while disconnected: ${acceptedWhileDisconnected}`,
    );

    // Recovery: every message reaches 'delivered'.
    const ids = new Set(jwss.map((j) => j.id));
    await eventually(
      async () => storeCounts(t!).deliveries >= MESSAGES && (await gw.store.outboxLag()) === 0,
      60_000,
      'every message delivered after recovery',
    );
    const tDelivered = Date.now();
    // Let late redeliveries (lost acks, republished lost confirms) arrive before counting.
    await eventually(
      async () => (await queueDepth(url, inboxQueue(TO))) === 0,
      20_000,
      'the inbox queue to drain',
    );
    await sleep(1000);

    const stored = await gw.store.entries(0, await gw.store.treeSize());
    const entries = parseEntries(stored);
    assertContiguous(stored, entries);
    const snap = await readStore(t.dataDir, { databaseUrl: t.databaseUrl });
    assertExactlyOnce(ids, snap, entries);
    assert.equal(snap.outbox, 0, 'outbox empty');
    for (const id of ids) assert.equal((await gw.store.getMessage(id))?.status, 'delivered');
    assert.equal(await queueDepth(url, inboxQueue(TO)), 0, 'inbox queue empty');
    assert.equal(await queueDepth(url, DEAD_QUEUE), 0, 'nothing dead-lettered');

    const total = async (c: { get(): Promise<{ values: { value: number }[] }> }) =>
      (await c.get()).values.reduce((sum, v) => sum + v.value, 0);
    console.log(
      `      ${MESSAGES} msgs; stop_app→start_app done ${tUp - tStop} ms (start_app ${tUp - tRestart} ms); ` +
        `${acceptedWhileDisconnected} accepted while disconnected, outbox ≥ ${lagDuringOutage}; ` +
        `submitted in ${tSubmitted - tStart} ms; all delivered ${tDelivered - tUp} ms after start_app; ` +
        `publish retries ${await total(gw.metrics.publishRetries)}, duplicates dropped ${await total(gw.metrics.duplicates)}`,
    );
  });
});
