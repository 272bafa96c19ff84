import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { connect, type ChannelModel } from 'amqplib';
import {
  createTestVhost,
  eventually,
  peekQueue,
  queueDepth,
  type TestVhost,
} from '../helpers/amqp.js';
import {
  createTransport,
  type Transport,
  type TransportEvents,
} from '../../src/transport/index.js';
import { DEAD_QUEUE, declareTopology, inboxQueue } from '../../src/transport/topology.js';
import {
  digestOf,
  fakeJws,
  FakeInbox,
  FakeOutbox,
  GATEWAY_ACTOR,
  recordingLogger,
} from './fakes.js';

describe('transport AMQP consumer (protocol §5.2)', () => {
  let vhost: TestVhost;
  let transport: Transport | undefined;
  let conn: ChannelModel | undefined;

  beforeEach(async () => {
    vhost = await createTestVhost();
  });
  afterEach(async () => {
    await transport?.stop();
    transport = undefined;
    await conn?.close().catch(() => {});
    conn = undefined;
    await vhost.cleanup();
  });

  /** Publishes like a gateway would, but with a plain client, so the test controls duplicates. */
  async function publishRaw(
    messageId: string | undefined,
    jws: string,
    digest = digestOf(jws),
    deliveryLimit = 5,
  ): Promise<void> {
    conn ??= await connect(vhost.url);
    await declareTopology(conn, { agencies: ['VN-LS'], deliveryLimit });
    const ch = await conn.createConfirmChannel();
    ch.publish('casebridge.messages', 'VN-LS.evidence.request', Buffer.from(jws, 'ascii'), {
      persistent: true,
      mandatory: true,
      ...(messageId === undefined ? {} : { messageId }),
      headers: { 'x-casebridge-digest': digest },
    });
    await ch.waitForConfirms();
    await ch.close();
  }

  function consumer(inbox: FakeInbox, events: TransportEvents = {}, deliveryLimit = 5) {
    transport = createTransport({
      url: vhost.url,
      agencies: ['VN-LS'],
      outbox: new FakeOutbox(),
      inbox,
      gatewayActor: GATEWAY_ACTOR,
      events,
      deliveryLimit,
      prefetch: 8,
    });
    return transport;
  }

  it('dedupes a redelivered message id: one inbox delivery, both copies acked', async () => {
    const inbox = new FakeInbox();
    const id = randomUUID();
    inbox.known.add(id);
    const jws = fakeJws();
    await publishRaw(id, jws);
    await publishRaw(id, jws);
    const seen: string[] = [];
    await consumer(inbox, {
      delivered: () => seen.push('delivered'),
      duplicate: () => seen.push('duplicate'),
    }).start();
    await eventually(async () => seen.length === 2, 5000, 'two deliveries');
    assert.deepEqual(seen, ['delivered', 'duplicate']);
    assert.equal(inbox.delivered.size, 1);
    assert.equal(inbox.delivered.get(id), digestOf(jws));
    await eventually(
      async () => (await queueDepth(vhost.url, inboxQueue('VN-LS'))) === 0,
      5000,
      'queue empty (acked)',
    );
    await transport?.stop();
    transport = undefined;
    assert.equal(
      await queueDepth(vhost.url, inboxQueue('VN-LS')),
      0,
      'nothing left unacked after stop',
    );
  });

  it('a poison message (deliver throws every time) ends in casebridge.dead after the delivery limit', async function () {
    this.timeout(30_000);
    const inbox = new FakeInbox();
    const id = randomUUID();
    inbox.known.add(id);
    inbox.failWith = () => new Error('store unavailable');
    const poison: string[] = [];
    const logger = recordingLogger();
    const jws = fakeJws();
    await publishRaw(id, jws, digestOf(jws), 3);
    transport = createTransport({
      url: vhost.url,
      agencies: ['VN-LS'],
      outbox: new FakeOutbox(),
      inbox,
      gatewayActor: GATEWAY_ACTOR,
      events: { poison: (mid) => poison.push(String(mid)) },
      deliveryLimit: 3,
      logger,
    });
    await transport.start();
    await eventually(
      async () => (await queueDepth(vhost.url, DEAD_QUEUE)) === 1,
      20_000,
      'dead-lettered',
    );
    assert.equal(await queueDepth(vhost.url, inboxQueue('VN-LS')), 0);
    // x-delivery-limit 3 = three redeliveries after the first delivery.
    assert.equal(inbox.calls.length, 4);
    assert.deepEqual(poison, [id]);
    assert.equal(inbox.delivered.size, 0);
    const [dead] = await peekQueue(vhost.url, DEAD_QUEUE);
    assert.equal(dead?.properties.messageId, id);
    assert.ok(dead?.content.equals(Buffer.from(jws, 'ascii')));
    assert.ok(
      !JSON.stringify(logger.lines).includes(jws.split('.')[1] ?? 'x'),
      'no body content in logs',
    );
  });

  it('a body that does not match its digest header never reaches the inbox and is dead-lettered', async function () {
    this.timeout(30_000);
    const inbox = new FakeInbox();
    const id = randomUUID();
    inbox.known.add(id);
    const rejected: string[] = [];
    await publishRaw(id, fakeJws(), digestOf('something else'), 2);
    await consumer(inbox, { rejected: (_id, reason) => rejected.push(reason) }, 2).start();
    await eventually(
      async () => (await queueDepth(vhost.url, DEAD_QUEUE)) === 1,
      20_000,
      'dead-lettered',
    );
    assert.equal(inbox.calls.length, 0);
    assert.deepEqual(rejected, ['digest-mismatch', 'digest-mismatch', 'digest-mismatch']);
  });

  it('a message without messageId is malformed and dead-lettered', async function () {
    this.timeout(30_000);
    const inbox = new FakeInbox();
    const rejected: string[] = [];
    await publishRaw(undefined, fakeJws(), undefined, 1);
    await consumer(inbox, { rejected: (_id, reason) => rejected.push(reason) }, 1).start();
    await eventually(
      async () => (await queueDepth(vhost.url, DEAD_QUEUE)) === 1,
      20_000,
      'dead-lettered',
    );
    assert.equal(inbox.calls.length, 0);
    assert.ok(rejected.every((r) => r === 'malformed') && rejected.length === 2);
  });

  it('end to end: outbox → relay → broker → consumer → inbox, each message delivered once', async function () {
    this.timeout(30_000);
    const outbox = new FakeOutbox();
    const inbox = new FakeInbox();
    const items = Array.from({ length: 200 }, () => outbox.add('VN-LS'));
    for (const i of items) inbox.known.add(i.messageId);
    transport = createTransport({
      url: vhost.url,
      agencies: ['VN-LS'],
      outbox,
      inbox,
      gatewayActor: GATEWAY_ACTOR,
    });
    await transport.start();
    assert.equal(transport.status().connected, true);
    await eventually(
      async () => inbox.delivered.size === 200 && (await outbox.outboxLag()) === 0,
      20_000,
      'all delivered',
    );
    for (const i of items) assert.equal(inbox.delivered.get(i.messageId), i.digest);
    assert.equal(inbox.calls.length, 200);
  });
});

describe('transport interoperability (protocol §5.2: any AMQP client can verify the body alone)', () => {
  let vhost: TestVhost;
  before(async () => {
    vhost = await createTestVhost();
  });
  after(async () => {
    await vhost.cleanup();
  });

  it('a plain amqplib consumer sharing no gateway code reads the inbox and checks sha256(body) = x-casebridge-digest', async () => {
    const outbox = new FakeOutbox();
    const items = [outbox.add('VN-LS'), outbox.add('VN-LS', { type: 'status.update' })];
    const t = createTransport({
      url: vhost.url,
      agencies: ['VN-LS'],
      outbox,
      inbox: new FakeInbox(),
      gatewayActor: GATEWAY_ACTOR,
      consume: false,
    });
    await t.start();
    await eventually(async () => (await outbox.outboxLag()) === 0, 5000, 'queued');
    await t.stop();

    // From here on: only amqplib and node:crypto.
    const { createHash } = await import('node:crypto');
    const c = await connect(vhost.url);
    const ch = await c.createChannel();
    const got: Array<{ id: string; ok: boolean }> = [];
    await ch.consume('casebridge.inbox.VN-LS', (m) => {
      if (!m) return;
      const digest = 'sha256:' + createHash('sha256').update(m.content).digest('hex');
      got.push({
        id: String(m.properties.messageId),
        ok: digest === m.properties.headers?.['x-casebridge-digest'],
      });
      ch.ack(m);
    });
    await eventually(async () => got.length === 2, 5000, 'two messages');
    await c.close();
    assert.deepEqual(got.map((g) => g.id).sort(), items.map((i) => i.messageId).sort());
    assert.ok(got.every((g) => g.ok));
  });
});
