import assert from 'node:assert/strict';
import { eventually } from '../helpers/amqp.js';
import { createTransport } from '../../src/transport/index.js';
import { FakeInbox, FakeOutbox, GATEWAY_ACTOR } from './fakes.js';

describe('transport embedded delivery (no broker URL)', () => {
  it('drains the outbox in process: deliver, then clear the rows in batches, once each', async () => {
    const outbox = new FakeOutbox();
    const inbox = new FakeInbox();
    for (let i = 0; i < 500; i++) inbox.known.add(outbox.add('VN-LS').messageId);
    const t = createTransport({ agencies: ['VN-LS'], outbox, inbox, gatewayActor: GATEWAY_ACTOR });
    await t.start();
    assert.equal(t.status().mode, 'embedded');
    await eventually(async () => inbox.delivered.size === 500, 5000, 'all delivered');
    assert.equal(await outbox.outboxLag(), 0);
    for (const n of outbox.markCounts.values()) assert.equal(n, 1);
    assert.ok(outbox.markCalls.length <= 10);
    assert.equal(inbox.calls.length, 500);
    await t.stop();
  });

  it('kick() delivers at once; failing deliveries are retried from the outbox and reported as poison, never dropped', async () => {
    const outbox = new FakeOutbox();
    const inbox = new FakeInbox();
    let failures = 2;
    const good = outbox.add('VN-LS');
    inbox.known.add(good.messageId);
    inbox.failWith = (id) =>
      id === good.messageId && failures-- > 0 ? new Error('busy') : undefined;
    const poison: string[] = [];
    const t = createTransport({
      agencies: ['VN-LS'],
      outbox,
      inbox,
      gatewayActor: GATEWAY_ACTOR,
      deliveryLimit: 3,
      pollIntervalMs: 60_000,
      events: { poison: (id) => poison.push(String(id)) },
    });
    await t.start();
    const bad = outbox.add('VN-LS'); // unknown to the inbox: 'unknown' every time
    t.kick();
    await eventually(
      async () => inbox.delivered.has(good.messageId),
      10_000,
      'delivered after retries',
    );
    await eventually(async () => poison.length === 1, 10_000, 'poison');
    assert.deepEqual(poison, [bad.messageId]);
    assert.ok(inbox.calls.filter((c) => c === bad.messageId).length >= 3);
    // Still in the outbox: a restart (or the next poll) tries it again.
    assert.equal(await outbox.outboxLag(), 1);
    await t.stop();
  });
});
