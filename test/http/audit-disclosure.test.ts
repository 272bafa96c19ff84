/**
 * Traffic patterns (docs/auditing.md, "Who sees what"): every auditor verifies the
 * whole tree, but an entry's metadata (who sent what to whom) goes only to the
 * auditors of the agencies it names, the operator's auditors and the audit grant.
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { verifyCheckpoint } from '../../src/audit/checkpoint.js';
import { mayReadEntry } from '../../src/audit/disclosure.js';
import { leafHash, verifyInclusion } from '../../src/audit/merkle.js';
import { verifyBundle } from '../../src/audit/verify.js';
import { sampleEnvelope } from '../fixtures/envelopes.js';
import {
  call,
  eventually,
  identity,
  signAs,
  startTestGateway,
  submit,
  writeTemp,
  type Identity,
  type TestGateway,
} from '../helpers/gateway.js';
import { getTestPki } from '../helpers/pki.js';

const MAIN = join(fileURLToPath(new URL('../../../', import.meta.url)), 'dist/src/cli/main.js');

interface Line {
  index: number;
  leaf?: string;
  leafHash?: string;
  entry?: { messageId?: string; from?: string; to?: string };
}

describe('audit log: who sees which entries (traffic patterns)', function () {
  this.timeout(60_000);
  let t: TestGateway;
  const ab: string[] = []; // CN-GX-CZ → VN-LS
  const cd: string[] = []; // CN-GD → MO-PJ
  let operator: Identity;

  before(async function () {
    t = await startTestGateway({ CASEBRIDGE_AUDIT_GRANT: 'VN-CB' });
    const pki = await getTestPki();
    operator = {
      cert: pki.files['operator/auditor.crt.pem']!,
      key: pki.files['operator/auditor.key.pem']!,
    };
    const [a, c] = await Promise.all([identity('CN-GX-CZ', 'system'), identity('CN-GD', 'system')]);
    for (let i = 0; i < 3; i++) {
      const e1 = sampleEnvelope('evidence.request', { from: 'CN-GX-CZ', to: 'VN-LS' });
      const e2 = sampleEnvelope('evidence.request', { from: 'CN-GD', to: 'MO-PJ' });
      expect((await submit(t.gw, a, signAs(e1, a))).status).to.equal(202);
      expect((await submit(t.gw, c, signAs(e2, c))).status).to.equal(202);
      ab.push(e1.id);
      cd.push(e2.id);
    }
    await eventually(
      async () =>
        (await Promise.all([...ab, ...cd].map((id) => t.gw.store.getMessage(id)))).every(
          (m) => m?.status === 'delivered',
        ),
      10_000,
      'delivery',
    );
    await eventually(
      async () => (await t.gw.store.latestCheckpoint())?.size === (await t.gw.store.treeSize()),
      5_000,
      'checkpoint',
    );
  });
  after(async () => t?.stop());

  async function entriesAs(who: Identity): Promise<Line[]> {
    const res = await call(t.gw, who, 'GET', '/v1/audit/entries');
    expect(res.status, res.text).to.equal(200);
    return res.text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Line);
  }
  const idsIn = (lines: Line[]) => new Set(lines.map((l) => l.entry?.messageId).filter(Boolean));

  it("shows a party's auditor its own traffic and only leaf hashes of another pair's", async function () {
    const lines = await entriesAs(await identity('VN-LS', 'auditor'));
    const seen = idsIn(lines);
    for (const id of ab) expect(seen.has(id)).to.equal(true);
    for (const id of cd) expect(seen.has(id)).to.equal(false);
    const text = JSON.stringify(lines);
    for (const id of cd) expect(text).not.to.include(id);
    expect(text).not.to.include('MO-PJ');
    const hidden = lines.filter((l) => l.leafHash !== undefined);
    expect(hidden.length).to.be.at.least(cd.length * 3); // accepted, queued, delivered
    for (const l of hidden) {
      expect(l).to.have.all.keys('index', 'leafHash');
    }
    // Administrative entries name no agency: everyone reads them.
    expect(lines[0]!.leaf).to.be.a('string');
  });

  it('every auditor can prove a hidden entry from its leaf hash alone', async function () {
    const auditor = await identity('VN-LS', 'auditor');
    const lines = await entriesAs(auditor);
    const hidden = lines.find((l) => l.leafHash !== undefined)!;
    const cpText = (await call(t.gw, auditor, 'GET', '/v1/audit/checkpoint')).text;
    const key = (await call(t.gw, auditor, 'GET', '/v1/audit/key')).text.trim();
    const cp = verifyCheckpoint(cpText, key);
    const proof = (
      await call(
        t.gw,
        auditor,
        'GET',
        `/v1/audit/proof/inclusion?index=${hidden.index}&size=${cp.size}`,
      )
    ).json<{ hashes: string[] }>();
    const hashes = proof.hashes.map((h) => Buffer.from(h, 'base64'));
    const hash = Buffer.from(hidden.leafHash!, 'base64');
    expect(verifyInclusion(hash, hidden.index, cp.size, hashes, cp.root)).to.equal(true);
    // It is the hash of the real entry.
    const [stored] = await t.gw.store.entries(hidden.index, hidden.index + 1);
    expect(leafHash(stored!.bytes).equals(hash)).to.equal(true);
    // Message proofs go to the parties' auditors only.
    expect((await call(t.gw, auditor, 'GET', `/v1/messages/${cd[0]}/proof`)).status).to.equal(404);
    expect((await call(t.gw, auditor, 'GET', `/v1/messages/${ab[0]}/proof`)).status).to.equal(200);
  });

  it("shows the operator's auditors and the audit grant everything", async function () {
    for (const who of [operator, await identity('VN-CB', 'auditor')]) {
      const lines = await entriesAs(who);
      expect(lines.every((l) => l.leaf !== undefined)).to.equal(true);
      const seen = idsIn(lines);
      for (const id of [...ab, ...cd]) expect(seen.has(id)).to.equal(true);
      expect((await call(t.gw, who, 'GET', `/v1/messages/${cd[0]}/proof`)).status).to.equal(200);
    }
  });

  it('a redacted export verifies offline; a changed leaf hash fails it', async function () {
    const auditor = await identity('MO-PJ', 'auditor');
    const res = await call(t.gw, auditor, 'GET', '/v1/audit/export');
    expect(res.status, res.text).to.equal(200);
    const lines = res.text.trim().split('\n');
    for (const id of ab) expect(res.text).not.to.include(id);
    const pinned = (await getTestPki()).text('trust.pem');
    const report = await verifyBundle(lines, {
      checkSignatures: true,
      vkey: (await call(t.gw, auditor, 'GET', '/v1/audit/key')).text.trim(),
      trustAnchors:
        pinned.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g) ?? [],
    });
    expect(report.ok, JSON.stringify(report.firstFailure)).to.equal(true);
    expect(report.redacted).to.be.at.least(ab.length * 3);

    const pki = await getTestPki();
    const vkey = (await call(t.gw, auditor, 'GET', '/v1/audit/key')).text.trim();
    const file = writeTemp('redacted.ndjson', res.text);
    const args = [MAIN, 'audit', 'verify', file, '--vkey', vkey, '--trust', pki.path('trust.pem')];
    const ok = spawnSync(process.execPath, args, { encoding: 'utf8' });
    expect(ok.status, ok.stdout + ok.stderr).to.equal(0);
    expect(ok.stdout).to.include('as leaf hashes only');

    const target = lines.findIndex((l) => l.includes('"leafHash"'));
    const line = JSON.parse(lines[target]!) as { leafHash: string };
    const bytes = Buffer.from(line.leafHash, 'base64');
    bytes[0]! ^= 0x01;
    const tampered = [...lines];
    tampered[target] = lines[target]!.replace(line.leafHash, bytes.toString('base64'));
    writeFileSync(file, tampered.join('\n') + '\n');
    const bad = spawnSync(process.execPath, args, { encoding: 'utf8' });
    expect(bad.status).to.equal(1);
    expect(bad.stdout).to.include('root-mismatch');
  });

  it('the rule: parties and actor, operator, grant; administrative entries for all', function () {
    const policy = { operatorId: 'GW-DEMO', auditGrant: new Set(['VN-CB']) };
    const base = { v: 1 as const, index: 0, ts: '2026-01-01T00:00:00.000Z' };
    const gw = { agency: 'GW-DEMO', role: 'gateway', subject: 'sha256:' + 'a'.repeat(64) };
    const queued = {
      ...base,
      event: 'message.queued' as const,
      actor: gw,
      from: 'CN-GX-CZ',
      to: 'VN-LS',
    };
    expect(mayReadEntry(queued, 'VN-LS', policy)).to.equal(true);
    expect(mayReadEntry(queued, 'CN-GD', policy)).to.equal(false);
    expect(mayReadEntry(queued, 'GW-DEMO', policy)).to.equal(true);
    expect(mayReadEntry(queued, 'VN-CB', policy)).to.equal(true);
    const refused = {
      ...base,
      event: 'message.refused' as const,
      actor: { ...gw, agency: 'CN-GD', role: 'system' },
    };
    expect(mayReadEntry(refused, 'CN-GD', policy)).to.equal(true);
    expect(mayReadEntry(refused, 'MO-PJ', policy)).to.equal(false);
    expect(
      mayReadEntry({ ...base, event: 'registry.loaded', actor: gw }, 'MO-PJ', policy),
    ).to.equal(true);
  });
});
