import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { verifyBundle, type VerifyReport } from '../../src/audit/verify.js';
import {
  describeFailure,
  verifyBundleFile,
  exitCodeFor,
  summarize,
} from '../../src/audit/bundle-file.js';
import { signCheckpoint } from '../../src/audit/checkpoint.js';
import { AuditError } from '../../src/audit/errors.js';
import { RECEIPT_TYP } from '../../src/envelope/types.js';
import { issue, makeCa, signJws, type Identity } from './fixtures/pki.js';
import {
  AGENCIES,
  ORIGIN,
  TestLog,
  entryLine,
  honestLog,
  leafOf,
  pki,
  withLeaf,
} from './fixtures/log.js';

const [CN, VN, LA] = AGENCIES;

function first(r: VerifyReport): { reason: string | undefined; index: number | undefined } {
  return { reason: r.firstFailure?.reason, index: r.firstFailure?.index };
}

/** Changes one hex digit of the actor subject: still a valid, canonical entry. */
function flipByte(leaf: Buffer): Buffer {
  const text = leaf.toString('utf8');
  const at = text.indexOf('"subject":"sha256:') + '"subject":"sha256:'.length;
  const c = text[at] === 'a' ? 'b' : 'a';
  const out = Buffer.from(leaf);
  out[at] = c.charCodeAt(0);
  return out;
}

/** The tests of detection logic take the key and anchors from the bundle, explicitly. */
const BUNDLE_TRUST = { trustBundleKey: true, trustBundleAnchors: true } as const;

function checkpointLines(log: TestLog, minSize = 0): string[] {
  return log.checkpoints
    .filter((c) => c.size >= minSize)
    .map((c) => JSON.stringify({ kind: 'checkpoint', text: c.text }));
}

describe('audit/verify: offline bundle verification (protocol §6.5)', function () {
  this.timeout(120_000);
  let honest: TestLog;
  let lines: string[];

  before(async () => {
    pki();
    honest = await honestLog(3); // 24 entries, a checkpoint after each
    lines = await honest.bundle();
  });

  it('accepts an honest bundle, signatures and chains included', async () => {
    const r = await verifyBundle(lines, {
      checkSignatures: true,
      vkey: honest.vkey,
      trustAnchors: [pki().ca.certPem],
    });
    assert.deepEqual(r.failures, []);
    assert.equal(r.ok, true);
    assert.equal(r.entries, 24);
    assert.equal(r.checkpoints, 24);
    assert.equal(r.messages, 12);
    assert.equal(r.root, honest.tree.root().toString('base64'));
    assert.equal(exitCodeFor(r), 0);
    assert.match(summarize(r), /^OK /);
  });

  it('trusts only the key and anchors the auditor pins (protocol §6.5)', async () => {
    const anchors = [pki().ca.certPem];
    const pinned = await verifyBundle(lines, {
      checkSignatures: true,
      vkey: honest.vkey,
      trustAnchors: anchors,
    });
    assert.equal(pinned.ok, true);
    assert.equal(pinned.trust?.unpinned, false);
    assert.equal(pinned.trust?.keyId, honest.vkey.split('+')[1]);
    assert.equal(exitCodeFor(pinned), 0);
    assert.match(
      summarize(pinned),
      new RegExp(`^OK .*${honest.vkey.split('+')[1]} \\(pinned\\).*Test Root CA`),
    );

    // A bundle re-signed end to end with an attacker's log key: header vkey and checkpoints.
    const attacker = new TestLog(generateKeyPairSync('ed25519').privateKey, 1);
    for (const bytes of honest.entries) attacker.appendRaw(bytes);
    const forged = await attacker.bundle();
    const none = await verifyBundle(forged, { checkSignatures: true, trustAnchors: anchors });
    assert.deepEqual(first(none), { reason: 'key-unpinned', index: undefined });
    assert.equal(exitCodeFor(none), 1);
    const noAnchors = await verifyBundle(forged, { checkSignatures: true, vkey: honest.vkey });
    assert.deepEqual(first(noAnchors), { reason: 'anchors-unpinned', index: undefined });

    const against = await verifyBundle(forged, {
      checkSignatures: true,
      vkey: honest.vkey,
      trustAnchors: anchors,
    });
    assert.equal(against.ok, false);
    assert.equal(against.firstFailure?.reason, 'vkey-mismatch');

    const self = await verifyBundle(forged, {
      checkSignatures: true,
      trustBundleKey: true,
      trustAnchors: anchors,
    });
    assert.deepEqual(self.failures, []);
    assert.equal(self.trust?.key, 'bundle');
    assert.equal(self.trust?.unpinned, true);
    assert.equal(exitCodeFor(self), 1);
    assert.match(summarize(self), /^UNPINNED /);
  });

  it('reports a changed entry inside sparse checkpoints as a range that holds it, pinned by its receipt', async () => {
    const sparse = await honestLog(3, 5); // checkpoints at 5, 10, 15, 20
    const t = await sparse.bundle();
    // Entry 8 is a message.accepted: change its ts, which its receipt states as acceptedAt.
    const at = entryLine(t, 8);
    const text = leafOf(t[at] as string).toString('utf8');
    assert.match(text, /"event":"message.accepted"/);
    const changed = text.replace(/"ts":"(\d{4})/, (_m, y: string) => `"ts":"${Number(y) + 1}`);
    t[at] = withLeaf(t[at] as string, Buffer.from(changed));
    const r = await verifyBundle(t, { ...BUNDLE_TRUST, checkSignatures: true });
    const root = r.failures.find((f) => f.reason === 'root-mismatch');
    assert.deepEqual(root?.range, { start: 5, end: 10 });
    assert.ok(root!.range!.start <= 8 && 8 < root!.range!.end);
    assert.equal(root?.pinnedEntry, 8);
    assert.ok(r.failures.some((f) => f.reason === 'receipt-mismatch' && f.index === 8));
    const line = summarize(r);
    assert.match(line, /entries 5 to 9/);
    assert.match(line, /entry 8/);

    // A change no receipt covers (an actor subject) is bounded by the range alone.
    const u = await sparse.bundle();
    const q = entryLine(u, 7);
    u[q] = withLeaf(u[q] as string, flipByte(leafOf(u[q] as string)));
    const r2 = await verifyBundle(u, { ...BUNDLE_TRUST, checkSignatures: true });
    assert.deepEqual(r2.firstFailure?.range, { start: 5, end: 10 });
    assert.equal(r2.firstFailure?.pinnedEntry, undefined);
    assert.match(describeFailure(r2.firstFailure!), /^root-mismatch in entries 5 to 9 /);
  });

  it('names the entry where one byte changed', async () => {
    const t = [...lines];
    const at = entryLine(t, 9);
    t[at] = withLeaf(t[at] as string, flipByte(leafOf(t[at] as string)));
    const r = await verifyBundle(t, { ...BUNDLE_TRUST, checkSignatures: true });
    assert.equal(r.ok, false);
    assert.deepEqual(first(r), { reason: 'root-mismatch', index: 9 });
    assert.deepEqual(r.firstFailure?.range, { start: 9, end: 10 });
    assert.equal(exitCodeFor(r), 1);
  });

  it('bounds a changed byte by the surrounding checkpoints when they are sparse', async () => {
    const sparse = await honestLog(3, 4);
    const t = await sparse.bundle();
    const at = entryLine(t, 9);
    t[at] = withLeaf(t[at] as string, flipByte(leafOf(t[at] as string)));
    const r = await verifyBundle(t, { ...BUNDLE_TRUST, checkSignatures: false });
    assert.deepEqual(first(r), { reason: 'root-mismatch', index: 8 });
    assert.deepEqual(r.firstFailure?.range, { start: 8, end: 12 });
  });

  it('pins a changed digest exactly through the message it no longer matches', async () => {
    const t = [...lines];
    const at = entryLine(t, 8); // message.accepted of the second exchange
    const text = leafOf(t[at] as string).toString('utf8');
    const i = text.indexOf('"digest":"sha256:') + '"digest":"sha256:'.length;
    const changed = text.slice(0, i) + (text[i] === '0' ? '1' : '0') + text.slice(i + 1);
    t[at] = withLeaf(t[at] as string, Buffer.from(changed));
    const r = await verifyBundle(t, { ...BUNDLE_TRUST, checkSignatures: true });
    assert.deepEqual(first(r), { reason: 'message-digest-mismatch', index: 8 });
    const reasons = r.failures.map((f) => f.reason);
    assert.ok(reasons.includes('receipt-mismatch'));
    assert.ok(reasons.includes('root-mismatch'));
  });

  it('detects a deleted entry', async () => {
    const t = [...lines];
    t.splice(entryLine(t, 10), 1);
    const r = await verifyBundle(t, { ...BUNDLE_TRUST, checkSignatures: true });
    assert.deepEqual(first(r), { reason: 'entry-missing', index: 10 });
  });

  it('detects two swapped entries', async () => {
    const t = [...lines];
    const a = entryLine(t, 10);
    const b = entryLine(t, 11);
    [t[a], t[b]] = [t[b] as string, t[a] as string];
    const r = await verifyBundle(t, { ...BUNDLE_TRUST, checkSignatures: true });
    assert.deepEqual(first(r), { reason: 'entry-reordered', index: 10 });
  });

  it('detects a fork: history rewritten and re-signed with the log key', async () => {
    // The gateway rewrites entry 6 and signs new checkpoints from size 7 on.
    const rewritten = new TestLog(honest.logKey, 0);
    honest.entries.forEach((bytes, i) => {
      rewritten.appendRaw(i === 6 ? flipByte(bytes) : bytes);
      if (i >= 6) rewritten.checkpoint();
    });
    const t = [...lines];
    const at = entryLine(t, 6);
    t[at] = withLeaf(t[at] as string, rewritten.entries[6] as Buffer);
    t.push(...checkpointLines(rewritten));
    const r = await verifyBundle(t, { ...BUNDLE_TRUST, checkSignatures: true });
    assert.deepEqual(first(r), { reason: 'checkpoint-fork', index: 6 });
    assert.deepEqual(r.firstFailure?.range, { start: 6, end: 7 });
  });

  it('detects a log truncated and grown again, against checkpoints the auditor kept', async () => {
    const before = await honestLog(3, 2); // checkpoints at even sizes 2..24
    const after = new TestLog(before.logKey, 0);
    for (const bytes of before.entries.slice(0, 14)) after.appendRaw(bytes);
    await after.exchange(VN, CN); // 8 new entries: 14..21
    await after.send(CN, VN); // 22
    after.checkpoint(); // size 23
    const kept = before.checkpoints.filter((c) => c.size > 14).map((c) => c.text);
    const bundle = await after.bundle({
      checkpoints: [...before.checkpoints.filter((c) => c.size <= 14), ...after.checkpoints],
    });
    const r = await verifyBundle(bundle, {
      ...BUNDLE_TRUST,
      checkSignatures: true,
      trustedCheckpoints: kept,
    });
    assert.deepEqual(first(r), { reason: 'checkpoint-inconsistent', index: 14 });
    assert.deepEqual(r.firstFailure?.range, { start: 14, end: 16 });
    assert.ok(r.failures.some((f) => f.reason === 'log-truncated' && f.checkpointSize === 24));
    // Without the kept checkpoints the rewritten log is self-consistent: nothing to see.
    assert.equal((await verifyBundle(bundle, { ...BUNDLE_TRUST, checkSignatures: true })).ok, true);
  });

  it('detects a truncated log against a kept checkpoint', async () => {
    const cut = new TestLog(honest.logKey, 1);
    for (const bytes of honest.entries.slice(0, 14)) cut.appendRaw(bytes);
    const r = await verifyBundle(await cut.bundle(), {
      ...BUNDLE_TRUST,
      checkSignatures: true,
      trustedCheckpoints: [
        (honest.checkpoints[honest.checkpoints.length - 1] as { text: string }).text,
      ],
    });
    assert.deepEqual(first(r), { reason: 'log-truncated', index: 14 });
  });

  it('rejects a checkpoint signed with another key', async () => {
    const other = generateKeyPairSync('ed25519').privateKey;
    const t = [...lines];
    const root = honest.tree.root(20);
    t.push(
      JSON.stringify({
        kind: 'checkpoint',
        text: signCheckpoint({ origin: ORIGIN, size: 20, root }, ORIGIN, other),
      }),
    );
    const r = await verifyBundle(t, { ...BUNDLE_TRUST, checkSignatures: true });
    assert.deepEqual(first(r), { reason: 'checkpoint-unknown-key', index: undefined });
    assert.equal(r.firstFailure?.checkpointSize, 20);
  });

  it('rejects a bundle whose log key is not the pinned one', async () => {
    const other = generateKeyPairSync('ed25519');
    const pinned = new TestLog(other.privateKey).vkey;
    const r = await verifyBundle(lines, { ...BUNDLE_TRUST, checkSignatures: false, vkey: pinned });
    assert.deepEqual(first(r), { reason: 'vkey-mismatch', index: undefined });
    assert.ok(r.failures.some((f) => f.reason === 'no-checkpoint'));
  });

  it('flags an inReplyTo naming a message between other agencies', async () => {
    const log = new TestLog();
    const m = await log.exchange(CN, VN);
    const stray = await log.send(LA, VN, { inReplyTo: m.id });
    const r = await verifyBundle(await log.bundle(), { ...BUNDLE_TRUST, checkSignatures: true });
    assert.deepEqual(first(r), { reason: 'broken-chain', index: stray.index });
  });

  it('flags an inReplyTo naming no earlier message', async () => {
    const log = new TestLog();
    await log.exchange(CN, VN);
    const stray = await log.send(VN, CN, { inReplyTo: '00000000-0000-4000-8000-000000000000' });
    const r = await verifyBundle(await log.bundle(), { ...BUNDLE_TRUST, checkSignatures: false });
    assert.deepEqual(first(r), { reason: 'broken-chain', index: stray.index });
  });

  it('flags a decision logged before the delivery', async () => {
    const log = new TestLog();
    await log.exchange(CN, VN);
    const m = await log.send(CN, VN);
    log.lifecycle(m, 'message.queued');
    const decided = log.lifecycle(m, 'message.decided');
    log.lifecycle(m, 'message.delivered');
    const r = await verifyBundle(await log.bundle(), { ...BUNDLE_TRUST, checkSignatures: true });
    assert.deepEqual(first(r), { reason: 'broken-chain', index: decided });
  });

  it('checks message signatures, chains and validity at createdAt', async () => {
    const log = new TestLog();
    await log.exchange(CN, VN);
    const forged = await log.send(CN, VN, {
      signKey: generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey,
    });
    const rogueCa = makeCa('Rogue CA');
    const rogue = await log.send(CN, VN, {
      signer: issue(rogueCa, CN, 'system', 'rogue'),
      ca: rogueCa,
    });
    const expired = await log.send(CN, VN, {
      signer: issue(pki().ca, CN, 'system', 'old', {
        from: new Date('2024-01-01Z'),
        to: new Date('2024-06-01Z'),
      }),
    });
    const impostor = await log.send(CN, VN, { signer: pki().systems[VN] as Identity });
    const bundle = await log.bundle();
    const r = await verifyBundle(bundle, { ...BUNDLE_TRUST, checkSignatures: true });
    const found = r.failures.map((f) => [f.reason, f.index]);
    assert.deepEqual(found, [
      ['message-signature-invalid', forged.index],
      ['message-certificate-invalid', rogue.index],
      ['message-certificate-invalid', expired.index],
      ['message-mismatch', impostor.index],
    ]);
    // Without signature checks only the digests are compared, and they match.
    assert.equal(
      (await verifyBundle(bundle, { ...BUNDLE_TRUST, checkSignatures: false })).ok,
      true,
    );
  });

  it('detects a message whose JWS was altered and a receipt that does not match its entry', async () => {
    const t = [...lines];
    const mi = t.findIndex((l) => l.startsWith('{"kind":"message"'));
    const msg = JSON.parse(t[mi] as string) as { id: string; jws: string };
    t[mi] = JSON.stringify({
      ...msg,
      jws: msg.jws.slice(0, -2) + (msg.jws.endsWith('AA') ? 'BA' : 'AA'),
    });
    const r = await verifyBundle(t, { ...BUNDLE_TRUST, checkSignatures: true });
    assert.deepEqual(first(r), { reason: 'message-digest-mismatch', index: 0 });

    const u = [...lines];
    const ri = u.findIndex((l) => l.startsWith('{"kind":"receipt"'));
    const rec = JSON.parse(u[ri] as string) as { id: string };
    const sent = honest.messages.get(rec.id);
    assert.ok(sent !== undefined);
    const bogus = await signJws(
      {
        messageId: rec.id,
        digest: 'sha256:' + '0'.repeat(64),
        logIndex: 0,
        acceptedAt: '2025-03-01T08:00:01.000Z',
        from: CN,
        to: VN,
        type: 'evidence.request',
      },
      RECEIPT_TYP,
      pki().gateway,
      pki().ca,
    );
    u[ri] = JSON.stringify({ kind: 'receipt', id: rec.id, jws: bogus });
    assert.deepEqual(first(await verifyBundle(u, { ...BUNDLE_TRUST, checkSignatures: true })), {
      reason: 'receipt-mismatch',
      index: 0,
    });
  });

  it('detects a bundle cut short and entries no checkpoint covers', async () => {
    const t = lines.filter(
      (l) => !l.startsWith('{"kind":"entry"') || (JSON.parse(l) as { index: number }).index < 21,
    );
    const cut = await verifyBundle(t, { ...BUNDLE_TRUST, checkSignatures: true });
    assert.deepEqual(first(cut), { reason: 'entries-truncated', index: 21 });
    assert.ok(cut.failures.some((f) => f.reason === 'message-unknown'));

    const log = new TestLog(undefined, 0);
    await log.exchange(CN, VN);
    log.checkpoint();
    await log.send(CN, VN);
    const u = await log.bundle({ checkpoints: log.checkpoints });
    const header = JSON.parse(u[0] as string) as Record<string, unknown>;
    u[0] = JSON.stringify({ ...header, end: 9 });
    const unsigned = u.filter(
      (l) => !l.includes('"kind":"message"') && !l.includes('"kind":"receipt"'),
    );
    unsigned.splice(
      9,
      0,
      JSON.stringify({
        kind: 'entry',
        index: 8,
        leaf: (log.entries[8] as Buffer).toString('base64'),
      }),
    );
    assert.deepEqual(
      first(await verifyBundle(unsigned, { ...BUNDLE_TRUST, checkSignatures: false })),
      {
        reason: 'unsigned-entries',
        index: 8,
      },
    );
  });

  it('refuses a bad header and a bundle that does not start at 0', async () => {
    assert.deepEqual(first(await verifyBundle(['not json', ...lines.slice(1)])), {
      reason: 'header-invalid',
      index: undefined,
    });
    assert.deepEqual(first(await verifyBundle(lines.slice(1))), {
      reason: 'header-invalid',
      index: undefined,
    });
    assert.deepEqual(first(await verifyBundle([])), { reason: 'header-invalid', index: undefined });
    const late = await honest.bundle({ start: 1 });
    assert.deepEqual(first(await verifyBundle(late)), {
      reason: 'unsupported-start',
      index: undefined,
    });
    const junk = [...lines.slice(0, 3), '{"kind":"mystery"}', ...lines.slice(3)];
    assert.deepEqual(first(await verifyBundle(junk, { ...BUNDLE_TRUST, checkSignatures: true })), {
      reason: 'line-malformed',
      index: undefined,
    });
  });

  it('exports ranges: clamps to the latest checkpoint, refuses inverted ones', async () => {
    const partial = await honest.bundle({ end: 10 });
    const header = JSON.parse(partial[0] as string) as {
      start: number;
      end: number;
      exportedAt: string;
    };
    assert.deepEqual(
      [header.start, header.end, header.exportedAt],
      [0, 10, '2025-06-01T00:00:00.000Z'],
    );
    const r = await verifyBundle(partial, { ...BUNDLE_TRUST, checkSignatures: true });
    assert.deepEqual(r.failures, []);
    assert.equal(r.entries, 10);
    const clamped = JSON.parse((await honest.bundle({ end: 1000 }))[0] as string) as {
      end: number;
    };
    assert.equal(clamped.end, 24);
    await assert.rejects(
      honest.bundle({ start: 30 }),
      (e: unknown) => e instanceof AuditError && e.reason === 'range-invalid',
    );
  });

  it('verifies a bundle file with CRLF line ends', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'casebridge-audit-'));
    try {
      const path = join(dir, 'bundle.ndjson');
      writeFileSync(path, lines.join('\r\n') + '\r\n');
      const r = await verifyBundleFile(path, { ...BUNDLE_TRUST, checkSignatures: true });
      assert.equal(r.ok, true);
      assert.equal(r.entries, 24);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
