/**
 * Fault tests against the real broker: `rabbitmqctl stop_app` takes the WHOLE
 * broker down, so these are few, serial, and always restore it in `after`.
 */
import assert from 'node:assert/strict';
import {
  createTestVhost,
  eventually,
  peekQueue,
  rabbitmqctl,
  startBroker,
  stopBroker,
  waitForPort,
  type TestVhost,
} from '../helpers/amqp.js';
import { createTransport, type Transport } from '../../src/transport/index.js';
import { inboxQueue } from '../../src/transport/topology.js';
import { FakeInbox, FakeOutbox, GATEWAY_ACTOR } from './fakes.js';

describe('transport under broker outage (stop_app / start_app)', function () {
  this.timeout(120_000);
  let vhost: TestVhost;
  let transport: Transport | undefined;

  before(async () => {
    vhost = await createTestVhost();
  });
  after(async () => {
    await transport?.stop();
    await startBroker().catch(() => {}); // idempotent; the broker must be up for everyone else
    await waitForPort();
    await vhost.cleanup();
  });

  it('relay reconnects by itself; every row ends queued once, and only lost-confirm rows may repeat in the queue', async () => {
    const outbox = new FakeOutbox();
    const inbox = new FakeInbox();
    const lostConfirm = new Set<string>();
    const states: string[] = [];
    transport = createTransport({
      url: vhost.url,
      agencies: ['VN-LS'],
      outbox,
      inbox,
      gatewayActor: GATEWAY_ACTOR,
      consume: false,
      inFlight: 64,
      events: {
        retried: (reason, id) => {
          if (reason === 'channel-closed' || reason === 'confirm-timeout') lostConfirm.add(id);
        },
        connection: (c, s) => states.push(`${c}:${s}`),
      },
    });
    await transport.start();
    const t = transport;

    // Keep accepting while the broker goes away and comes back.
    let producing = true;
    const producer = (async () => {
      while (producing) {
        for (let i = 0; i < 5; i++) outbox.add('VN-LS');
        t.kick();
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    await eventually(async () => outbox.markCounts.size > 100, 10_000, 'publishing under way');
    await stopBroker();
    await eventually(async () => !t.status().connected, 10_000, 'relay noticed the outage');
    const lagDuringOutage = await outbox.outboxLag();
    await new Promise((r) => setTimeout(r, 1000));
    await startBroker();
    await new Promise((r) => setTimeout(r, 500));
    producing = false;
    await producer;

    await eventually(
      async () => (await outbox.outboxLag()) === 0,
      60_000,
      'every row queued after recovery',
    );
    assert.ok(lagDuringOutage > 0, 'rows accumulated in the outbox during the outage');
    assert.ok(states.includes('relay:disconnected'));
    assert.equal(states.filter((s) => s === 'relay:connected').length >= 2, true);

    for (const [id, n] of outbox.markCounts) assert.equal(n, 1, `marked queued ${n} times: ${id}`);
    assert.equal(outbox.markCounts.size, outbox.rows.size);

    const seen = new Map<string, number>();
    for (const m of await peekQueue(vhost.url, inboxQueue('VN-LS'))) {
      const id = String(m.properties.messageId);
      seen.set(id, (seen.get(id) ?? 0) + 1);
    }
    for (const id of outbox.rows.keys()) assert.ok(seen.has(id), `missing from the queue: ${id}`);
    assert.equal(seen.size, outbox.rows.size);
    const repeated = [...seen].filter(([, n]) => n > 1).map(([id]) => id);
    // At-least-once: a copy can repeat only if its confirm was lost with the connection.
    for (const id of repeated)
      assert.ok(lostConfirm.has(id), `duplicated without a lost confirm: ${id}`);
    console.log(
      `      ${outbox.rows.size} rows; ${lostConfirm.size} confirms lost in the outage; ${repeated.length} duplicated in the queue`,
    );
  });
});

describe('transport when the broker blocks publishers (memory alarm)', function () {
  this.timeout(60_000);
  let vhost: TestVhost;
  before(async () => {
    vhost = await createTestVhost();
  });
  after(async () => {
    await rabbitmqctl('set_vm_memory_high_watermark', '0.4');
    await vhost.cleanup();
  });

  it('pauses on connection.blocked, marks nothing queued meanwhile, resumes on unblocked', async () => {
    const outbox = new FakeOutbox();
    const t = createTransport({
      url: vhost.url,
      agencies: ['VN-LS'],
      outbox,
      inbox: new FakeInbox(),
      gatewayActor: GATEWAY_ACTOR,
      consume: false,
      confirmTimeoutMs: 1000,
    });
    await t.start();
    await rabbitmqctl('set_vm_memory_high_watermark', 'absolute', '1');
    // RabbitMQ sends connection.blocked only once the connection tries to publish.
    const first = outbox.add('VN-LS');
    t.kick();
    await eventually(async () => t.status().blocked, 20_000, 'blocked');
    const during = Array.from({ length: 20 }, () => outbox.add('VN-LS'));
    t.kick();
    await new Promise((r) => setTimeout(r, 2500)); // longer than the confirm timeout
    assert.ok(during.every((i) => !outbox.isQueued(i.messageId)));
    assert.equal(outbox.reschedules.length, 0, 'a blocked connection is not a confirm timeout');
    await rabbitmqctl('set_vm_memory_high_watermark', '0.4');
    await eventually(
      async () => (await outbox.outboxLag()) === 0,
      20_000,
      'all queued after unblock',
    );
    assert.equal(t.status().blocked, false);
    assert.equal(outbox.markCounts.get(first.messageId), 1);
    await t.stop();
  });
});

describe('transport when the broker is unreachable at start', () => {
  it('start() resolves, status shows disconnected, rows stay in the outbox and retries continue', async () => {
    const outbox = new FakeOutbox();
    outbox.add('VN-LS');
    const states: string[] = [];
    const t = createTransport({
      url: 'amqp://guest:guest@127.0.0.1:5999/', // nothing listens here
      agencies: ['VN-LS'],
      outbox,
      inbox: new FakeInbox(),
      gatewayActor: GATEWAY_ACTOR,
      events: { connection: (c, s) => states.push(`${c}:${s}`) },
    });
    await t.start();
    assert.deepEqual(t.status(), { mode: 'amqp', connected: false, inFlight: 0, blocked: false });
    await eventually(
      async () => states.filter((s) => s === 'relay:connect-failed').length >= 2,
      5000,
      'a background retry',
    );
    assert.equal(await outbox.outboxLag(), 1);
    await t.stop();
  });
});
