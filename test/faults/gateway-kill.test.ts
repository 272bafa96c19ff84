/**
 * Fault: `kill -9` of the gateway process while agencies submit, several times,
 * each time restarted on the same data directory (`casebridge serve`, RabbitMQ
 * mode). protocol §3: a 202 means durably stored; protocol §5.2: nothing accepted is
 * lost or delivered twice. A request cut by the kill may or may not have been
 * accepted: the same bytes are submitted again after the restart and idempotency
 * answers 200 (it was) or 202 (it was not).
 */
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { DEAD_QUEUE, inboxQueue } from '../../src/transport/topology.js';
import { sampleEnvelope } from '../fixtures/envelopes.js';
import { createTestVhost, queueDepth, type TestVhost } from '../helpers/amqp.js';
import { eventually, identity, testEnv } from '../helpers/gateway.js';
import { getTestPki } from '../helpers/pki.js';
import {
  assertContiguous,
  assertExactlyOnce,
  countDeliveries,
  countRows,
  eventCounts,
  freePort,
  FROM,
  GatewayProcess,
  keepAliveClient,
  parseEntries,
  readStore,
  signer,
  sleep,
  TO,
  verifyStoreOffline,
  type KeepAliveClient,
} from './support.js';
import { databaseNameOf, dropTestDatabase } from '../helpers/database.js';

const KILLS = 4;
const WORKERS = 8;
/** Uptime before each kill is drawn from [MIN, MIN + SPREAD) ms of submitting. */
const UPTIME_MIN_MS = 400;
const UPTIME_SPREAD_MS = 1200;
/** Hard cap on the number of messages, whatever the speed. */
const MAX_MESSAGES = 6000;

describe('fault: gateway process killed with SIGKILL and restarted (protocol §3, §5.2, §6)', function () {
  this.timeout(150_000);
  let vhost: TestVhost | undefined;
  let gwp: GatewayProcess | undefined;
  let dataDir: string | undefined;
  let databaseUrl: string | undefined;
  let client: KeepAliveClient | undefined;

  before(async () => {
    vhost = await createTestVhost();
  });
  after(async () => {
    client?.close();
    await gwp?.term(10_000).catch(() => {});
    await vhost?.cleanup();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    if (databaseUrl !== undefined) await dropTestDatabase(databaseNameOf(databaseUrl));
  });

  it('every 202/200 is delivered exactly once across kills; the audit log stays consistent and verifies', async () => {
    const url = vhost!.url;
    const [port, adminPort] = [await freePort(), await freePort()];
    const env = await testEnv({
      CASEBRIDGE_AMQP_URL: url,
      CASEBRIDGE_PORT: String(port),
      CASEBRIDGE_ADMIN_PORT: String(adminPort),
      CASEBRIDGE_LOG_LEVEL: 'info',
      // Kills are the subject here, not the rate limit: a fast start would pass 600/min.
      CASEBRIDGE_RATE_PER_MIN: '1000000',
    });
    dataDir = env['CASEBRIDGE_DATA_DIR']!;
    databaseUrl = env['CASEBRIDGE_DATABASE_URL'];
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
      await eventually(
        async () => acceptedSinceStart >= 10,
        20_000,
        `submissions after start ${k}`,
      );
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
    await eventually(
      async () => acceptedSinceStart >= 50,
      20_000,
      'submissions after the last restart',
    );
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
      async () => countDeliveries(dir, env['CASEBRIDGE_DATABASE_URL']) >= ids.size,
      60_000,
      'every accepted message delivered',
    );
    // Rows the killed process had published but not yet marked queued are sent
    // again by the restarted one (its claims lapse with its heartbeat on PostgreSQL).
    await eventually(
      async () => countRows('outbox', dir, env['CASEBRIDGE_DATABASE_URL']) === 0,
      20_000,
      'the outbox to drain',
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
    const snap = await readStore(dir, { databaseUrl: env['CASEBRIDGE_DATABASE_URL'] });
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
    await verifyStoreOffline(snap);

    console.log(
      `      ${ids.size} messages over ${KILLS} kills in ${submittedMs} ms (restart ${downtimes.join('/')} ms); ` +
        `${uncertain.size} cut requests resubmitted (${replayed200} had been accepted); ` +
        `${lastBeforeKill.length} pre-kill 202s replayed as 200; ${stored.length} audit entries, ` +
        `${snap.checkpoints.length} checkpoints; bundle verified`,
    );
  });
});
