import assert from 'node:assert/strict';
import { connect, type ChannelModel } from 'amqplib';
import { createTestVhost, type TestVhost } from '../helpers/amqp.js';
import {
  declareTopology,
  DEAD_QUEUE,
  inboxQueue,
  TopologyError,
} from '../../src/transport/topology.js';
import { createTransport } from '../../src/transport/index.js';
import { FakeInbox, FakeOutbox, GATEWAY_ACTOR } from './fakes.js';

describe('transport topology (protocol §5.2)', () => {
  let vhost: TestVhost;
  let conn: ChannelModel;

  beforeEach(async () => {
    vhost = await createTestVhost();
    conn = await connect(vhost.url);
  });
  afterEach(async () => {
    await conn.close().catch(() => {});
    await vhost.cleanup();
  });

  it('is idempotent: declaring twice succeeds and yields quorum queues bound as specified', async () => {
    const spec = { agencies: ['CN-GX-CZ', 'VN-LS'], deliveryLimit: 5 };
    await declareTopology(conn, spec);
    await declareTopology(conn, spec);
    const ch = await conn.createChannel();
    for (const q of [inboxQueue('CN-GX-CZ'), inboxQueue('VN-LS'), DEAD_QUEUE]) {
      const ok = await ch.checkQueue(q);
      assert.equal(ok.queue, q);
    }
    // Binding `<agency>.#`: a message for VN-LS lands in its queue only.
    await ch.publish('casebridge.messages', 'VN-LS.status.update', Buffer.from('x'));
    await new Promise((r) => setTimeout(r, 200));
    assert.equal((await ch.checkQueue(inboxQueue('VN-LS'))).messageCount, 1);
    assert.equal((await ch.checkQueue(inboxQueue('CN-GX-CZ'))).messageCount, 0);
    // Re-declaring with exactly the arguments of §5.2 from a plain client is accepted (quorum + DLX + limit).
    await ch.assertQueue(inboxQueue('VN-LS'), {
      durable: true,
      arguments: {
        'x-queue-type': 'quorum',
        'x-dead-letter-exchange': 'casebridge.dead',
        'x-delivery-limit': 5,
      },
    });
    await ch.close();
  });

  it('refuses a pre-existing classic queue with a TopologyError naming the queue and the argument', async () => {
    const ch = await conn.createChannel();
    await ch.assertQueue(inboxQueue('VN-LS'), { durable: true });
    await ch.close();
    let caught: unknown;
    try {
      await declareTopology(conn, { agencies: ['CN-GX-CZ', 'VN-LS'], deliveryLimit: 5 });
    } catch (err) {
      caught = err;
    }
    assert.ok(caught instanceof TopologyError);
    const err = caught as TopologyError;
    assert.equal(err.code, 'TOPOLOGY_MISMATCH');
    assert.equal(err.resource, 'casebridge.inbox.VN-LS');
    // The broker names the first argument it finds different (3.10 checks the DLX before the type).
    assert.ok(
      ['x-queue-type', 'x-dead-letter-exchange', 'x-delivery-limit'].includes(err.argument ?? ''),
      err.argument,
    );
    assert.match(
      err.message,
      /^queue casebridge\.inbox\.VN-LS exists with different arguments \(x-[a-z-]+\)$/,
    );
    assert.equal(err.replyCode, 406);
    // The connection survived: only the throwaway channel was closed by the broker.
    const ch2 = await conn.createChannel();
    await ch2.checkQueue(inboxQueue('CN-GX-CZ'));
    await ch2.close();
  });

  it('a different delivery limit is a mismatch too', async () => {
    await declareTopology(conn, { agencies: ['VN-LS'], deliveryLimit: 5 });
    const err = await declareTopology(conn, { agencies: ['VN-LS'], deliveryLimit: 7 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(err instanceof TopologyError);
    assert.equal(err.argument, 'x-delivery-limit');
  });

  it('Transport.start() fails fast with the TopologyError and leaves nothing running', async () => {
    const ch = await conn.createChannel();
    await ch.assertQueue(inboxQueue('VN-LS'), { durable: true });
    await ch.close();
    const t = createTransport({
      url: vhost.url,
      agencies: ['VN-LS'],
      outbox: new FakeOutbox(),
      inbox: new FakeInbox(),
      gatewayActor: GATEWAY_ACTOR,
    });
    const started = Date.now();
    const err = await t.start().then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(err instanceof TopologyError);
    assert.equal(err.resource, 'casebridge.inbox.VN-LS');
    assert.ok(Date.now() - started < 3000);
    assert.equal(t.status().connected, false);
    await t.stop();
  });
});
