import assert from 'node:assert/strict';
import {
  createTestVhost,
  eventually,
  peekQueue,
  rabbitmqctl,
  type TestVhost,
} from '../helpers/amqp.js';
import {
  createTransport,
  type Transport,
  type TransportEvents,
} from '../../src/transport/index.js';
import { connect } from 'amqplib';
import { declareTopology, inboxQueue } from '../../src/transport/topology.js';
import { FakeInbox, FakeOutbox, GATEWAY_ACTOR, recordingLogger } from './fakes.js';

describe('transport AMQP relay (protocol §5.2)', () => {
  let vhost: TestVhost;
  let transport: Transport | undefined;

  beforeEach(async () => {
    vhost = await createTestVhost();
  });
  afterEach(async () => {
    await transport?.stop();
    transport = undefined;
    await vhost.cleanup();
  });

  function relayOnly(
    outbox: FakeOutbox,
    events: TransportEvents = {},
    extra: { inFlight?: number } = {},
  ) {
    transport = createTransport({
      url: vhost.url,
      agencies: ['CN-GX-CZ', 'VN-LS'],
      outbox,
      inbox: new FakeInbox(),
      gatewayActor: GATEWAY_ACTOR,
      events,
      consume: false,
      ...extra,
    });
    return transport;
  }

  it('publishes the exact JWS bytes with every property and header of §5.2, then marks it queued', async () => {
    const outbox = new FakeOutbox();
    const item = outbox.add('VN-LS', { type: 'funds.freeze' });
    const t = relayOnly(outbox);
    await t.start();
    assert.equal(t.status().mode, 'amqp');
    await eventually(async () => outbox.isQueued(item.messageId), 5000, 'markQueued');

    const [msg, ...rest] = await peekQueue(vhost.url, inboxQueue('VN-LS'));
    assert.equal(rest.length, 0);
    assert.ok(msg);
    assert.ok(msg.content.equals(Buffer.from(item.jws, 'ascii')));
    assert.equal(msg.fields.exchange, 'casebridge.messages');
    assert.equal(msg.fields.routingKey, 'VN-LS.funds.freeze');
    const p = msg.properties;
    assert.equal(p.messageId, item.messageId);
    assert.equal(p.contentType, 'application/jose');
    assert.equal(p.type, 'funds.freeze');
    assert.equal(p.deliveryMode, 2); // persistent
    assert.equal(p.timestamp, Math.floor(Date.parse(item.acceptedAt) / 1000));
    assert.equal(p.headers?.['x-casebridge-digest'], item.digest);
    assert.equal(p.headers?.['x-casebridge-log-index'], item.logIndex);
    assert.equal(p.headers?.['x-casebridge-from'], item.from);
    assert.equal(outbox.markCounts.get(item.messageId), 1);
  });

  it('an unroutable message is returned and rescheduled, never marked queued', async () => {
    const outbox = new FakeOutbox();
    const lost = outbox.add('TH-BKK'); // no queue for this agency
    const ok = outbox.add('VN-LS');
    const returned: string[] = [];
    const retried: Array<[string, string]> = [];
    const t = relayOnly(outbox, {
      returned: (id) => returned.push(id),
      retried: (reason, id) => retried.push([reason, id]),
    });
    await t.start();
    await eventually(
      async () => outbox.isQueued(ok.messageId) && retried.length > 0,
      5000,
      'outcomes',
    );
    assert.deepEqual(returned, [lost.messageId]);
    assert.deepEqual(retried, [['returned', lost.messageId]]);
    assert.equal(outbox.reschedules[0]?.reason, 'returned');
    assert.ok((outbox.reschedules[0]?.delayMs ?? 0) > 0, 'rescheduled into the future');
    assert.equal(outbox.isQueued(lost.messageId), false);
    assert.equal(outbox.markCounts.has(lost.messageId), false);
  });

  it('marks a row queued only after the broker confirmed it (a nacked publish is rescheduled)', async function () {
    this.timeout(40_000);
    // A full quorum queue with `overflow: reject-publish` nacks publishes. Quorum queues
    // only start rejecting once over the limit, so fill it past max-length 1 first.
    await rabbitmqctl(
      'set_policy',
      '-p',
      vhost.name,
      '--apply-to',
      'queues',
      'full',
      '^casebridge\\.inbox\\.',
      '{"max-length":1,"overflow":"reject-publish"}',
    );
    const conn = await connect(vhost.url);
    await declareTopology(conn, { agencies: ['CN-GX-CZ', 'VN-LS'], deliveryLimit: 5 });
    const filler = await conn.createConfirmChannel();
    for (let i = 0; i < 2; i++) filler.sendToQueue(inboxQueue('VN-LS'), Buffer.from('filler'));
    await filler.waitForConfirms();
    await conn.close();
    const outbox = new FakeOutbox();
    const item = outbox.add('VN-LS');
    const retried: string[] = [];
    const t = relayOnly(outbox, { retried: (reason) => retried.push(reason) });
    await t.start();
    await eventually(async () => retried.length > 0, 5000, 'a nack');
    assert.equal(retried[0], 'nack');
    assert.equal(outbox.isQueued(item.messageId), false);
    assert.equal(outbox.markCounts.size, 0);

    // Raise the limit (3.10: clearing the policy outright leaves the quorum queue rejecting).
    await rabbitmqctl(
      'set_policy',
      '-p',
      vhost.name,
      '--apply-to',
      'queues',
      'full',
      '^casebridge\\.inbox\\.',
      '{"max-length":100000,"overflow":"reject-publish"}',
    );
    await eventually(
      async () => outbox.isQueued(item.messageId),
      20_000,
      'queued after the policy is lifted',
    );
    assert.equal(outbox.markCounts.get(item.messageId), 1);
  });

  it('1,000 outbox rows: each published once, marked queued once, in batches, never more than inFlight unconfirmed', async function () {
    this.timeout(60_000);
    const outbox = new FakeOutbox();
    const ids = new Set<string>();
    for (let i = 0; i < 1000; i++) ids.add(outbox.add(i % 2 ? 'VN-LS' : 'CN-GX-CZ').messageId);
    let published = 0;
    let maxInFlight = 0;
    const events: TransportEvents = {
      published: () => {
        published++;
        maxInFlight = Math.max(maxInFlight, t.status().inFlight);
      },
    };
    const t = relayOnly(outbox, events, { inFlight: 64 });
    const started = Date.now();
    await t.start();
    await eventually(async () => (await outbox.outboxLag()) === 0, 30_000, 'all queued');
    const elapsed = Date.now() - started;
    assert.equal(published, 1000);
    assert.ok(maxInFlight <= 64, `in flight peaked at ${maxInFlight}`);
    for (const id of ids) assert.equal(outbox.markCounts.get(id), 1, id);
    assert.ok(outbox.markCalls.length < 200, `${outbox.markCalls.length} markQueued calls`);

    const seen = new Map<string, number>();
    for (const q of [inboxQueue('VN-LS'), inboxQueue('CN-GX-CZ')]) {
      for (const m of await peekQueue(vhost.url, q)) {
        const id = String(m.properties.messageId);
        seen.set(id, (seen.get(id) ?? 0) + 1);
      }
    }
    assert.equal(seen.size, 1000);
    assert.ok([...seen.values()].every((n) => n === 1));
    console.log(
      `      1000 rows queued in ${elapsed} ms with ${outbox.markCalls.length} markQueued calls`,
    );
  });

  it('kick() publishes at once, without waiting for the poll', async () => {
    const outbox = new FakeOutbox();
    transport = createTransport({
      url: vhost.url,
      agencies: ['VN-LS'],
      outbox,
      inbox: new FakeInbox(),
      gatewayActor: GATEWAY_ACTOR,
      consume: false,
      pollIntervalMs: 60_000,
    });
    await transport.start();
    const item = outbox.add('VN-LS');
    const t0 = Date.now();
    transport.kick();
    await eventually(async () => outbox.isQueued(item.messageId), 5000, 'queued');
    assert.ok(Date.now() - t0 < 2000);
  });

  it('logs ids and digests only, never the message bytes', async () => {
    const outbox = new FakeOutbox();
    const item = outbox.add('TH-BKK');
    const logger = recordingLogger();
    transport = createTransport({
      url: vhost.url,
      agencies: ['VN-LS'],
      outbox,
      inbox: new FakeInbox(),
      gatewayActor: GATEWAY_ACTOR,
      consume: false,
      logger,
    });
    await transport.start();
    await eventually(async () => outbox.reschedules.length > 0, 5000, 'a reschedule');
    const text = JSON.stringify(logger.lines);
    assert.ok(text.includes(item.messageId));
    assert.ok(!text.includes(item.jws.split('.')[1] ?? 'x'));
  });

  it('reopens its channel after a broker channel error, retrying a reopen that fails, on the same connection', async function () {
    this.timeout(90_000);
    const outbox = new FakeOutbox();
    const retried: string[] = [];
    const t = relayOnly(outbox, { retried: (reason) => retried.push(reason) });
    await t.start();
    const first = outbox.add('VN-LS');
    t.kick();
    await eventually(async () => outbox.isQueued(first.messageId), 5000, 'first queued');
    // The exchange goes away and our user may no longer declare it: the next publish
    // kills the channel (404), and the reopen, which declares the topology, is refused.
    const admin = await connect(vhost.url);
    const ch = await admin.createChannel();
    await ch.deleteExchange('casebridge.messages');
    await admin.close();
    await rabbitmqctl('set_permissions', '-p', vhost.name, 'guest', '^$', '.*', '.*');
    const second = outbox.add('VN-LS');
    t.kick();
    await eventually(
      async () => retried.includes('channel-closed'),
      10_000,
      'the channel to close',
    );
    await new Promise((r) => setTimeout(r, 1500)); // at least one refused reopen
    assert.equal(outbox.isQueued(second.messageId), false);
    await rabbitmqctl('set_permissions', '-p', vhost.name, 'guest', '.*', '.*', '.*');
    await eventually(
      async () => outbox.isQueued(second.messageId),
      40_000,
      'queued after the repair',
    );
    const [msg] = await peekQueue(vhost.url, inboxQueue('VN-LS'));
    assert.ok(msg, 'the inbox binding was declared again');
    assert.equal(t.status().connected, true);
  });
});
