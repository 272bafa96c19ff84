import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateKeyPairSync } from 'node:crypto';
import {
  parseVkey,
  signCheckpoint,
  verifyCheckpoint,
  vkeyFor,
} from '../../src/audit/checkpoint.js';
import { verifyBundle } from '../../src/audit/verify.js';
import { leafHash, verifyConsistency, verifyInclusion } from '../../src/audit/merkle.js';
import { sampleEnvelope, SAMPLE_PERSONAL_STRINGS } from '../fixtures/envelopes.js';
import {
  call,
  eventually,
  writeTemp,
  identity,
  signAs,
  startTestGateway,
  submit,
  type Identity,
  type TestGateway,
} from '../helpers/gateway.js';
import { getTestPki } from '../helpers/pki.js';

const A = 'CN-GX-CZ';

interface Proof {
  index: number;
  size: number;
  hashes: string[];
  checkpoint?: string;
}

describe('audit log API (protocol §6.4)', function () {
  let t: TestGateway;
  let aSys: Identity;
  let aAuditor: Identity;
  let cSys: Identity;
  const ids: string[] = [];

  before(async function () {
    t = await startTestGateway({ CASEBRIDGE_EXPORT_GRANT: A });
    [aSys, aAuditor, cSys] = await Promise.all([
      identity(A, 'system'),
      identity(A, 'auditor'),
      identity('VN-CB', 'system'),
    ]);
    for (let i = 0; i < 12; i++) {
      const env = sampleEnvelope(i % 2 ? 'funds.freeze' : 'evidence.request');
      const res = await submit(t.gw, aSys, signAs(env, aSys));
      expect(res.status).to.equal(202);
      ids.push(env.id);
    }
    await eventually(
      async () =>
        (await Promise.all(ids.map((id) => t.gw.store.getMessage(id)))).every(
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

  async function latest(): Promise<{ size: number; root: Buffer; text: string }> {
    const key = (await call(t.gw, aAuditor, 'GET', '/v1/audit/key')).text.trim();
    const res = await call(t.gw, aAuditor, 'GET', '/v1/audit/checkpoint');
    expect(res.status).to.equal(200);
    expect(res.headers['content-type']).to.match(/^text\/plain/);
    const cp = verifyCheckpoint(res.text, key);
    expect(cp.origin).to.equal('casebridge/GW-DEMO');
    return { size: cp.size, root: cp.root, text: res.text };
  }

  it('serves a checkpoint signed by the published vkey', async function () {
    const key = (await call(t.gw, aSys, 'GET', '/v1/audit/key')).text.trim();
    expect(key).to.match(/^casebridge\/GW-DEMO\+[0-9a-f]{8}\+[A-Za-z0-9+/=]+$/);
    const cp = await latest();
    expect(cp.size).to.equal(await t.gw.store.treeSize());
  });

  it('serves every entry as exact bytes, with inclusion proofs that verify for every index of a 300-entry log', async function () {
    // Administrative entries fill the log up to 300 (they carry no message content).
    const actor = { agency: 'GW-DEMO', role: 'gateway', subject: 'sha256:' + 'b'.repeat(64) };
    const fills: Promise<unknown>[] = [];
    for (let i = await t.gw.store.treeSize(); i < 300; i++) {
      fills.push(t.gw.store.append({ event: 'gateway.started', actor, detail: { n: i } }));
    }
    await Promise.all(fills);
    await eventually(
      async () => (await t.gw.store.latestCheckpoint())?.size === 300,
      5_000,
      'checkpoint at 300',
    );
    const cp = await latest();
    expect(cp.size).to.equal(300);
    const res = await call(t.gw, aAuditor, 'GET', `/v1/audit/entries?start=0&end=${cp.size}`);
    expect(res.status).to.equal(200);
    expect(res.headers['content-type']).to.match(/^application\/x-ndjson/);
    const lines = res.text
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { index: number; leaf: string; entry: { index: number } });
    expect(lines).to.have.length(cp.size);
    for (const [i, line] of lines.entries()) {
      expect(line.index).to.equal(i);
      const bytes = Buffer.from(line.leaf, 'base64');
      expect(JSON.parse(bytes.toString('utf8'))).to.deep.equal(line.entry);
      const proof = (
        await call(t.gw, aAuditor, 'GET', `/v1/audit/proof/inclusion?index=${i}&size=${cp.size}`)
      ).json<Proof>();
      const hashes = proof.hashes.map((h) => Buffer.from(h, 'base64'));
      expect(verifyInclusion(leafHash(bytes), i, cp.size, hashes, cp.root), `index ${i}`).to.equal(
        true,
      );
      expect(verifyInclusion(leafHash(Buffer.from('x')), i, cp.size, hashes, cp.root)).to.equal(
        false,
      );
    }
    for (const s of SAMPLE_PERSONAL_STRINGS) expect(res.text).not.to.include(s);
  });

  it('proves a message to its sender against the latest checkpoint, and hides it from others', async function () {
    const id = ids[3]!;
    const res = await call(t.gw, aSys, 'GET', `/v1/messages/${id}/proof`);
    expect(res.status, res.text).to.equal(200);
    const proof = res.json<Proof>();
    const m = (await t.gw.store.getMessage(id))!;
    expect(proof.index).to.equal(m.logIndex);
    const cp = verifyCheckpoint(
      proof.checkpoint!,
      (await call(t.gw, aSys, 'GET', '/v1/audit/key')).text.trim(),
    );
    expect(cp.size).to.equal(proof.size);
    const [entry] = await t.gw.store.entries(m.logIndex, m.logIndex + 1);
    const parsed = JSON.parse(entry!.bytes.toString('utf8')) as {
      event: string;
      messageId: string;
    };
    expect(parsed).to.include({ event: 'message.accepted', messageId: id });
    const hashes = proof.hashes.map((h) => Buffer.from(h, 'base64'));
    expect(
      verifyInclusion(leafHash(entry!.bytes), proof.index, proof.size, hashes, cp.root),
    ).to.equal(true);

    expect((await call(t.gw, cSys, 'GET', `/v1/messages/${id}/proof`)).status).to.equal(404);
    expect((await call(t.gw, aAuditor, 'GET', `/v1/messages/${id}/proof`)).status).to.equal(200);
  });

  it('proves consistency between an earlier and a later checkpoint', async function () {
    const first = await latest();
    const env = sampleEnvelope('evidence.request');
    expect((await submit(t.gw, aSys, signAs(env, aSys))).status).to.equal(202);
    await eventually(
      async () => ((await t.gw.store.latestCheckpoint())?.size ?? 0) > first.size,
      5_000,
      'a new checkpoint',
    );
    const second = await latest();
    const res = await call(
      t.gw,
      aAuditor,
      'GET',
      `/v1/audit/proof/consistency?from=${first.size}&to=${second.size}`,
    );
    const body = res.json<{ from: number; to: number; hashes: string[] }>();
    const hashes = body.hashes.map((h) => Buffer.from(h, 'base64'));
    expect(verifyConsistency(first.size, second.size, hashes, first.root, second.root)).to.equal(
      true,
    );
    expect(verifyConsistency(first.size, second.size, hashes, second.root, first.root)).to.equal(
      false,
    );
  });

  it('refuses the log to non-auditors and bad parameters with stable codes', async function () {
    const entries = await call(t.gw, aSys, 'GET', '/v1/audit/entries');
    expect(entries.status).to.equal(403);
    expect(entries.json<{ code: string }>().code).to.equal('FORBIDDEN_ROLE');
    const cpSize = (await t.gw.store.latestCheckpoint())!.size;
    for (const q of [
      'index=abc',
      `index=${cpSize}&size=${cpSize}`,
      `index=0&size=${cpSize + 1000}`,
      '',
    ]) {
      const res = await call(t.gw, aAuditor, 'GET', `/v1/audit/proof/inclusion?${q}`);
      expect(res.status, q).to.equal(400);
      expect(res.json<{ code: string }>().code).to.equal('INVALID_PARAMETER');
    }
    const bad = await call(t.gw, aAuditor, 'GET', '/v1/audit/proof/consistency?from=5&to=2');
    expect(bad.json<{ code: string }>().code).to.equal('INVALID_PARAMETER');
  });

  it('exports a bundle that verifies offline, with message signatures, and flags a changed byte', async function () {
    const res = await call(t.gw, aAuditor, 'GET', '/v1/audit/export?messages=true');
    expect(res.status, res.text).to.equal(200);
    expect(res.headers['content-type']).to.match(/^application\/x-ndjson/);
    const lines = res.text.trim().split('\n');
    const kinds = lines.map((l) => (JSON.parse(l) as { kind: string }).kind);
    expect(kinds[0]).to.equal('casebridge-audit-export');
    expect(kinds.filter((k) => k === 'message').length).to.be.at.least(ids.length);
    // The auditor's own key (fetched here from the gateway, in real life from elsewhere) and anchors.
    const pki = await getTestPki();
    const vkey = (await call(t.gw, aAuditor, 'GET', '/v1/audit/key')).text.trim();
    const trustAnchors = [pki.files['trust.pem']!];
    const report = await verifyBundle(lines, { checkSignatures: true, vkey, trustAnchors });
    expect(report.ok, JSON.stringify(report.firstFailure)).to.equal(true);
    expect(report.messages).to.be.at.least(ids.length);

    // The CLI verifies the same file; one changed byte in an entry fails it, naming the index.
    const main = join(fileURLToPath(new URL('../../../', import.meta.url)), 'dist/src/cli/main.js');
    const file = writeTemp('bundle.ndjson', res.text);
    const trust = writeTemp('trust.pem', pki.files['trust.pem']!);
    const cli = (args: string[], env: Record<string, string> = {}) =>
      spawnSync(process.execPath, [main, 'audit', 'verify', file, ...args], {
        encoding: 'utf8',
        env: { ...process.env, CASEBRIDGE_AUDIT_VKEY: '', ...env },
      });
    const ok = cli(['--vkey', vkey, '--trust', trust]);
    expect(ok.status, ok.stderr).to.equal(0);
    expect(ok.stdout).to.match(/^OK /);
    expect(ok.stdout).to.include(`${vkey.split('+')[1]} (pinned)`);
    const viaEnv = cli(['--trust', trust], { CASEBRIDGE_AUDIT_VKEY: vkey });
    expect(viaEnv.status, viaEnv.stderr).to.equal(0);

    // No pinned key: a usage error, one line. The bundle's own key: UNPINNED, exit 1.
    const unpinned = cli(['--trust', trust]);
    expect(unpinned.status).to.equal(2);
    expect(unpinned.stderr.trim().split('\n')).to.have.length(1);
    expect(unpinned.stdout).to.equal('');
    const noAnchors = cli(['--vkey', vkey]);
    expect(noAnchors.status).to.equal(2);
    const self = cli(['--trust-bundle-key', '--trust-bundle-anchors']);
    expect(self.status).to.equal(1);
    expect(self.stdout).to.match(/^UNPINNED /);

    // The same bundle re-signed with an attacker's Ed25519 log key: header and checkpoints.
    const attackerKey = generateKeyPairSync('ed25519').privateKey;
    const header = JSON.parse(lines[0]!) as { origin: string; vkey: string };
    const forged = lines.map((l, i) => {
      const o = JSON.parse(l) as { kind: string; text?: string };
      if (i === 0) return JSON.stringify({ ...header, vkey: vkeyFor(header.origin, attackerKey) });
      if (o.kind !== 'checkpoint') return l;
      const body = verifyCheckpoint(o.text!, parseVkey(vkey));
      return JSON.stringify({ ...o, text: signCheckpoint(body, header.origin, attackerKey) });
    });
    const forgedFile = writeTemp('forged.ndjson', forged.join('\n') + '\n');
    const forgedRun = (args: string[]) =>
      spawnSync(process.execPath, [main, 'audit', 'verify', forgedFile, ...args], {
        encoding: 'utf8',
        env: { ...process.env, CASEBRIDGE_AUDIT_VKEY: '' },
      });
    expect(forgedRun(['--trust', trust]).status).to.equal(2);
    const forgedSelf = forgedRun(['--trust', trust, '--trust-bundle-key']);
    expect(forgedSelf.status).to.equal(1);
    expect(forgedSelf.stdout).to.match(/^UNPINNED /);
    expect(forgedRun(['--trust', trust, '--vkey', vkey]).status).to.equal(1);

    const target = lines.findIndex((l) => l.includes('"kind":"entry"') && l.includes('"index":5,'));
    const entry = JSON.parse(lines[target]!) as { leaf: string };
    const bytes = Buffer.from(entry.leaf, 'base64');
    bytes[bytes.length - 3]! ^= 0x01;
    const tampered = [...lines];
    tampered[target] = lines[target]!.replace(entry.leaf, bytes.toString('base64'));
    writeFileSync(file, tampered.join('\n') + '\n');
    const bad = cli(['--vkey', vkey, '--trust', trust]);
    expect(bad.status).to.equal(1);
    expect(bad.stderr).to.include('entry 5');
  });

  it('serves an earlier checkpoint by size (protocol §6.5)', async function () {
    const latest = (await t.gw.store.latestCheckpoint())!;
    const earlier = (await t.gw.store.checkpoints(1, latest.size)).find(
      (c) => c.size < latest.size,
    )!;
    const res = await call(t.gw, aAuditor, 'GET', `/v1/audit/checkpoint?size=${earlier.size}`);
    expect(res.status).to.equal(200);
    expect(res.text).to.equal(earlier.text);
    const signed = new Set((await t.gw.store.checkpoints(0, latest.size)).map((c) => c.size));
    let unsigned = 1;
    while (signed.has(unsigned)) unsigned++;
    const none = await call(t.gw, aAuditor, 'GET', `/v1/audit/checkpoint?size=${unsigned}`);
    expect(none.status).to.equal(404);
    expect(none.json<{ code: string }>().code).to.equal('NOT_FOUND');
    for (const bad of ['x', '-1', '1.5']) {
      const r = await call(t.gw, aAuditor, 'GET', `/v1/audit/checkpoint?size=${bad}`);
      expect(r.json<{ code: string }>().code).to.equal('INVALID_PARAMETER');
    }
  });

  it('refuses the export with messages to auditors without the grant, and to agencies', async function () {
    const other = await identity('VN-LS', 'auditor');
    const noGrant = await call(t.gw, other, 'GET', '/v1/audit/export?messages=true');
    expect(noGrant.status).to.equal(403);
    expect(noGrant.json<{ code: string }>().code).to.equal('FORBIDDEN_ROLE');
    expect((await call(t.gw, other, 'GET', '/v1/audit/export')).status).to.equal(200);
    expect((await call(t.gw, aSys, 'GET', '/v1/audit/export')).status).to.equal(403);
    const badRange = await call(t.gw, aAuditor, 'GET', '/v1/audit/export?start=99999');
    expect(badRange.json<{ code: string }>().code).to.equal('INVALID_PARAMETER');
  });

  it('records the lifecycle of every message in order', async function () {
    const events = (await t.gw.store.entries(0, await t.gw.store.treeSize())).map(
      (e) =>
        JSON.parse(e.bytes.toString('utf8')) as {
          event: string;
          messageId?: string;
          index: number;
        },
    );
    for (const id of ids) {
      expect(events.filter((e) => e.messageId === id).map((e) => e.event)).to.deep.equal([
        'message.accepted',
        'message.queued',
        'message.delivered',
      ]);
    }
    expect(events[0]!.event).to.equal('registry.loaded');
    events.forEach((e, i) => expect(e.index).to.equal(i));
  });
});
