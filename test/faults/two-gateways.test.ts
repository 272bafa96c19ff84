/**
 * Fault: two gateway processes on one PostgreSQL database and one broker take
 * submissions at the same time; the one holding the checkpoint signer lease is
 * killed with SIGKILL mid-stream (protocol §11). Afterwards every 202 is in the
 * one log exactly once, the log verifies offline against the pinned log key and
 * anchors, signing moved to the survivor within 5 s, and every accepted message
 * reached its inbox exactly once. Everything is read back the way an auditor
 * would: through the survivor's API and an offline verification of its export.
 */
import assert from 'node:assert/strict';
import { createPublicKey } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { vkeyFor } from '../../src/audit/checkpoint.js';
import { verifyBundle } from '../../src/audit/verify.js';
import type { AuditEntry } from '../../src/audit/types.js';
import { parsePemChain } from '../../src/pki/pem.js';
import { inboxQueue } from '../../src/transport/topology.js';
import { sampleEnvelope } from '../fixtures/envelopes.js';
import { createTestVhost, queueDepth, type TestVhost } from '../helpers/amqp.js';
import { createTestDatabase, databaseUrl, dropTestDatabase } from '../helpers/database.js';
import { eventually, identity, releaseTestEnv, testEnv } from '../helpers/gateway.js';
import { getTestPki } from '../helpers/pki.js';
import {
  freePort,
  FROM,
  GatewayProcess,
  keepAliveClient,
  signer,
  sleep,
  TO,
  type KeepAliveClient,
} from './support.js';

const WORKERS_PER_GATEWAY = 6;
const MAX_MESSAGES = 4000;
/** protocol §11: another process takes over signing within this. */
const TAKEOVER_MS = 5000;

interface Node {
  proc: GatewayProcess;
  env: Record<string, string>;
  client: KeepAliveClient;
  admin: string;
}

async function readiness(admin: string): Promise<{ ready: boolean; signer: string | undefined }> {
  const res = await fetch(`${admin}/readyz`);
  const body = (await res.json()) as {
    ready: boolean;
    checks: Record<string, { detail?: string }>;
  };
  return { ready: body.ready, signer: body.checks['signer']?.detail };
}

describe('fault: two gateways on one PostgreSQL log, the signer killed with SIGKILL (protocol §11)', function () {
  this.timeout(180_000);
  let vhost: TestVhost | undefined;
  let database: string | undefined;
  let shared: string | undefined;
  const nodes: Node[] = [];

  before(async () => {
    vhost = await createTestVhost();
    database = await createTestDatabase();
    shared = mkdtempSync(join(tmpdir(), 'casebridge-shared-'));
  });
  after(async () => {
    for (const n of nodes) {
      n.client.close();
      await n.proc.term(10_000).catch(() => {});
      await releaseTestEnv(n.env);
    }
    await vhost?.cleanup();
    if (database) await dropTestDatabase(database);
    if (shared) rmSync(shared, { recursive: true, force: true });
  });

  it('keeps one gap-free log that verifies, moves signing to the survivor, and loses or doubles nothing', async () => {
    const pki = await getTestPki();
    const sys = await identity(FROM, 'system');
    const sign = signer(sys);
    for (let k = 0; k < 2; k++) {
      const [port, adminPort] = [await freePort(), await freePort()];
      const env = await testEnv({
        CASEBRIDGE_DATABASE_URL: databaseUrl(database!),
        CASEBRIDGE_AMQP_URL: vhost!.url,
        CASEBRIDGE_PORT: String(port),
        CASEBRIDGE_ADMIN_PORT: String(adminPort),
        CASEBRIDGE_FILES_DIR: join(shared!, 'files'),
        CASEBRIDGE_KEY_DIR: join(shared!, 'keys'),
        CASEBRIDGE_EXPORT_GRANT: TO,
        CASEBRIDGE_RATE_PER_MIN: '1000000',
        CASEBRIDGE_LOG_LEVEL: 'info',
      });
      const proc = new GatewayProcess(env);
      await proc.start();
      nodes.push({
        proc,
        env,
        client: keepAliveClient(
          `https://127.0.0.1:${port}`,
          sys,
          pki.files['trust.pem']!,
          WORKERS_PER_GATEWAY,
        ),
        admin: `http://127.0.0.1:${adminPort}`,
      });
    }

    // Exactly one of the two signs.
    let roles: (string | undefined)[] = [];
    await eventually(
      async () => {
        roles = await Promise.all(nodes.map(async (n) => (await readiness(n.admin)).signer));
        return roles.filter((r) => r === 'holds the lease').length === 1;
      },
      10_000,
      'one signer',
    );
    assert.deepEqual([...roles].sort(), ['holds the lease', 'standby']);
    const victim = nodes[roles.indexOf('holds the lease')]!;
    const survivor = nodes[roles.indexOf('standby')]!;

    const sent = new Map<string, string>();
    const answered = new Map<string, { logIndex: number; digest: string }>();
    const uncertain = new Set<string>();
    const unexpected: string[] = [];
    let producing = true;
    let victimDown = false;
    const worker = async (node: Node) => {
      while (producing && sent.size < MAX_MESSAGES) {
        if (node === victim && victimDown) return;
        const env = sampleEnvelope('evidence.request', { from: FROM, to: TO });
        const jws = sign(env);
        sent.set(env.id, jws);
        try {
          const res = await node.client.submit(jws);
          if (res.status === 202) answered.set(env.id, JSON.parse(res.text));
          else unexpected.push(`${res.status} ${res.text.slice(0, 200)}`);
        } catch {
          uncertain.add(env.id); // cut by the kill
        }
      }
    };
    const workers = Promise.all(
      nodes.flatMap((n) => Array.from({ length: WORKERS_PER_GATEWAY }, () => worker(n))),
    );

    await eventually(async () => answered.size >= 300, 30_000, 'submissions through both');
    victimDown = true;
    await victim.proc.kill9();
    const killedAt = Date.now();
    const before = answered.size;
    await eventually(
      async () => (await readiness(survivor.admin)).signer === 'holds the lease',
      TAKEOVER_MS + 1000,
      'the survivor to take the signer lease',
    );
    const tookOverMs = Date.now() - killedAt;
    assert.ok(tookOverMs <= TAKEOVER_MS, `signing moved after ${tookOverMs} ms`);
    // …and it signs: a checkpoint covering what was accepted after the kill.
    await eventually(async () => answered.size >= before + 200, 30_000, 'the survivor to go on');
    producing = false;
    await workers;
    assert.deepEqual(unexpected.slice(0, 5), [], 'only 202 or transport errors');

    // A request cut by the kill is settled by sending its bytes again, to the survivor.
    for (const id of uncertain) {
      const res = await survivor.client.submit(sent.get(id)!);
      assert.ok(res.status === 200 || res.status === 202, `resubmission: ${res.status}`);
      answered.set(id, JSON.parse(res.text));
    }
    assert.equal(answered.size, sent.size, 'every message sent ended with a 202 or a 200');

    // Every message reaches the recipient's inbox; nothing stays in the broker.
    const recipient = await identity(TO, 'system');
    const reader = keepAliveClient(
      `https://127.0.0.1:${survivor.env['CASEBRIDGE_PORT']}`,
      recipient,
      pki.files['trust.pem']!,
      8,
    );
    const auditor = await identity(TO, 'auditor');
    const audit = keepAliveClient(
      `https://127.0.0.1:${survivor.env['CASEBRIDGE_PORT']}`,
      auditor,
      pki.files['trust.pem']!,
      2,
    );
    /** The whole log as the auditor reads it, page by page. */
    const readLog = async (): Promise<{ index: number; entry?: AuditEntry }[]> => {
      const out: { index: number; entry?: AuditEntry }[] = [];
      for (;;) {
        const res = await audit.get(`/v1/audit/entries?start=${out.length}`);
        assert.equal(res.status, 200);
        const page = res.text.trim();
        if (page === '') return out;
        for (const l of page.split('\n'))
          out.push(JSON.parse(l) as { index: number; entry?: AuditEntry });
      }
    };
    try {
      let entries: AuditEntry[] = [];
      await eventually(
        async () => {
          entries = (await readLog())
            .map((l) => l.entry)
            .filter((e): e is AuditEntry => e !== undefined);
          const delivered = entries.filter((e) => e.event === 'message.delivered').length;
          return delivered >= answered.size;
        },
        90_000,
        'every accepted message delivered',
      );
      await eventually(
        async () => (await queueDepth(vhost!.url, inboxQueue(TO))) === 0,
        20_000,
        'the inbox queue to drain',
      );
      await sleep(1000); // a late second delivery would show up below

      const lines = await readLog();
      // One gap-free sequence of indexes, whoever appended.
      lines.forEach((l, k) => assert.equal(l.index, k, 'indexes are 0..n-1 without a gap'));
      entries = lines.map((l) => l.entry).filter((e): e is AuditEntry => e !== undefined);
      const count = (event: string) => {
        const m = new Map<string, number>();
        for (const e of entries)
          if (e.event === event) m.set(e.messageId!, (m.get(e.messageId!) ?? 0) + 1);
        return m;
      };
      const acceptedOnce = count('message.accepted');
      const deliveredOnce = count('message.delivered');
      const problems: string[] = [];
      for (const [id, a] of answered) {
        if (acceptedOnce.get(id) !== 1)
          problems.push(`${id}: accepted ${acceptedOnce.get(id) ?? 0}×`);
        if (deliveredOnce.get(id) !== 1)
          problems.push(`${id}: delivered ${deliveredOnce.get(id) ?? 0}×`);
        const e = lines[a.logIndex]?.entry;
        if (e?.event !== 'message.accepted' || e.messageId !== id)
          problems.push(`${id}: its receipt's logIndex ${a.logIndex} names another entry`);
      }
      assert.deepEqual(problems.slice(0, 10), [], `${problems.length} exactly-once violations`);
      assert.equal(acceptedOnce.size, answered.size, 'nothing accepted that nobody was told of');

      // The recipient reads every message as delivered.
      const sample = [...answered.keys()].slice(0, 50);
      for (const id of sample) {
        const m = await reader.get(`/v1/messages/${id}`);
        assert.equal(m.status, 200);
        assert.equal((JSON.parse(m.text) as { status: string }).status, 'delivered');
      }

      // The survivor's export verifies offline against the pinned key and anchors.
      await eventually(
        async () => {
          const cp = await audit.get('/v1/audit/checkpoint');
          return cp.status === 200 && Number(cp.text.split('\n')[1]) === lines.length;
        },
        10_000,
        'a checkpoint over the whole log',
      );
      const exported = await audit.get('/v1/audit/export?messages=true');
      assert.equal(exported.status, 200);
      const logKey = createPublicKey(pki.files['log/log.key.pem']!);
      const vkey = vkeyFor('casebridge/GW-DEMO', logKey);
      const anchors = parsePemChain(pki.files['trust.pem']!).map((x) => x.toString());
      const report = await verifyBundle(exported.text.trim().split('\n'), {
        checkSignatures: true,
        vkey,
        trustAnchors: anchors,
      });
      assert.equal(report.ok, true, `offline verification: ${JSON.stringify(report.firstFailure)}`);
      assert.equal(report.entries, lines.length);
      console.log(
        `      ${answered.size} messages through 2 gateways, signer killed after ${before}; ` +
          `signing moved in ${tookOverMs} ms; ${uncertain.size} cut requests resubmitted; ` +
          `${lines.length} entries, one log, verified offline`,
      );
    } finally {
      reader.close();
      audit.close();
    }
  });
});
