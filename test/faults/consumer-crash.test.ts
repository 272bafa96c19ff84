/**
 * Fault: the consumer process dies after the inbox write committed and before its
 * ack reached the broker (test/fixtures/crashing-consumer.ts SIGKILLs itself
 * there). The broker requeues the unacked message; the next consumer must
 * recognise the redelivery by message id (protocol §5.2): ack it, and leave exactly one
 * delivery and one `message.delivered` entry.
 */
import assert from 'node:assert/strict';
import { envelopeDigest } from '../../src/messages/replay.js';
import { spawn } from 'node:child_process';
import { createHash, createPrivateKey } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AuditActor } from '../../src/audit/types.js';
import { parsePemChain } from '../../src/pki/pem.js';
import { SqliteStore } from '../../src/store/index.js';
import { receiptMaker } from '../../src/submission/submit.js';
import { createTransport, type Transport } from '../../src/transport/index.js';
import { DEAD_QUEUE, inboxQueue } from '../../src/transport/topology.js';
import { sampleEnvelope } from '../fixtures/envelopes.js';
import { createTestVhost, eventually, queueDepth, type TestVhost } from '../helpers/amqp.js';
import { identity } from '../helpers/gateway.js';
import { getTestPki } from '../helpers/pki.js';
import { assertExactlyOnce, FROM, parseEntries, readStoreFile, signer, TO } from './support.js';

const FIXTURE = fileURLToPath(new URL('../fixtures/crashing-consumer.js', import.meta.url));
const ACTOR: AuditActor = {
  agency: 'GW-DEMO',
  role: 'gateway',
  subject: `sha256:${'a'.repeat(64)}`,
};

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function runFixture(env: Record<string, string>, timeoutMs: number): Promise<Exit> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [FIXTURE], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(
          `crashing consumer still running after ${timeoutMs} ms; stderr: ${stderr.slice(-2000)}`,
        ),
      );
    }, timeoutMs);
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      // 'exit' may precede the last pipe data; 'close' follows both.
      child.on('close', () => resolve({ code, signal, stdout, stderr }));
    });
  });
}

describe('fault: consumer killed between inbox write and ack (protocol §5.2)', function () {
  this.timeout(60_000);
  let vhost: TestVhost | undefined;
  let dataDir: string | undefined;
  let store: SqliteStore | undefined;
  let transport: Transport | undefined;

  before(async () => {
    vhost = await createTestVhost();
    dataDir = mkdtempSync(join(tmpdir(), 'casebridge-fault-consumer-'));
  });
  after(async () => {
    await transport?.stop().catch(() => {});
    store?.close();
    await vhost?.cleanup();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it('the redelivery is recognised as a duplicate and acked; one delivery, one message.delivered', async () => {
    const url = vhost!.url;
    const dir = dataDir!;
    const queue = inboxQueue(TO);

    // 1. A message accepted in the store and published by the real relay (real headers).
    const pki = await getTestPki();
    const gateway = {
      key: createPrivateKey(pki.files['gateway/gateway.key.pem']!),
      chain: parsePemChain(pki.files['gateway/gateway.crt.pem']!),
    };
    const sys = await identity(FROM, 'system');
    const env = sampleEnvelope('evidence.request', { from: FROM, to: TO });
    const jws = signer(sys)(env);
    const digest = `sha256:${createHash('sha256').update(jws, 'ascii').digest('hex')}`;
    store = new SqliteStore({ dataDir: dir });
    const outcome = await store.accept(
      {
        id: env.id,
        digest,
        envelopeDigest: envelopeDigest(env),
        jws,
        envelope: env,
        actor: { agency: FROM, role: 'system', subject: `sha256:${'b'.repeat(64)}` },
      },
      receiptMaker(env, digest, gateway),
    );
    assert.equal(outcome.kind, 'accepted');
    const s = store;
    transport = createTransport({
      url,
      agencies: [TO],
      outbox: s,
      inbox: s,
      gatewayActor: ACTOR,
      consume: false,
    });
    await transport.start();
    transport.kick();
    await eventually(
      async () => (await s.outboxLag()) === 0,
      15_000,
      'the relay to publish and mark queued',
    );
    await transport.stop();
    transport = undefined;
    assert.equal((await s.getMessage(env.id))?.status, 'queued');
    assert.equal(await queueDepth(url, queue), 1);
    s.close();
    store = undefined;

    // 2. The crashing consumer writes the delivery and dies before acking.
    const crashed = await runFixture(
      { CASEBRIDGE_DATA_DIR: dir, CASEBRIDGE_AMQP_URL: url, CRASHING_CONSUMER_AGENCIES: TO },
      40_000,
    );
    assert.equal(
      crashed.signal,
      'SIGKILL',
      `fixture exit ${crashed.code}/${crashed.signal}: ${crashed.stderr.slice(-2000)}`,
    );
    assert.match(crashed.stdout, new RegExp(`^delivered ${env.id} delivered$`, 'm'));
    const afterCrash = readStoreFile(dir);
    assert.equal(
      afterCrash.messages.get(env.id)?.status,
      'delivered',
      'the inbox write committed before the crash',
    );
    assert.equal(afterCrash.deliveries.get(env.id), 1);
    // Unacked on a dead connection → back in the queue.
    await eventually(
      async () => (await queueDepth(url, queue)) === 1,
      15_000,
      'the broker to requeue the unacked message',
    );

    // 3. A normal consumer on the same store: duplicate, acked, queue drains.
    const seen = { delivered: [] as string[], duplicate: [] as string[], rejected: [] as string[] };
    store = new SqliteStore({ dataDir: dir });
    const s2 = store;
    transport = createTransport({
      url,
      agencies: [TO],
      outbox: s2,
      inbox: s2,
      gatewayActor: ACTOR,
      events: {
        delivered: (id) => seen.delivered.push(id),
        duplicate: (id) => seen.duplicate.push(id),
        rejected: (id) => seen.rejected.push(String(id)),
      },
    });
    await transport.start();
    await eventually(
      async () => seen.duplicate.length > 0,
      15_000,
      'the redelivery to be recognised',
    );
    // Stopping requeues anything unacked: an empty queue afterwards proves the ack.
    await transport.stop();
    transport = undefined;
    assert.deepEqual(seen, { delivered: [], duplicate: [env.id], rejected: [] });
    assert.equal(await queueDepth(url, queue), 0, 'inbox queue empty after the consumer stopped');
    assert.equal(await queueDepth(url, DEAD_QUEUE), 0, 'nothing dead-lettered');

    const snap = readStoreFile(dir);
    const entries = parseEntries(snap.entries);
    assertExactlyOnce(new Set([env.id]), snap, entries);
    assert.deepEqual(
      entries.map((e) => e.event),
      ['message.accepted', 'message.queued', 'message.delivered'],
    );
    s2.close();
    store = undefined;
  });
});
