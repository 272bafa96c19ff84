import { expect } from 'chai';
import type { AuditEntry } from '../../src/audit/types.js';
import { FileCustodyCheck } from '../../src/audit/verify-files.js';

const SUBJECT = `sha256:${'1'.repeat(64)}`;
const D = `sha256:${'a'.repeat(64)}`;
const ID = '7d0f6a1e-2b8c-4c1e-9a59-0c7d9e4f3b21';

function entry(index: number, over: Partial<AuditEntry>): AuditEntry {
  return {
    v: 1,
    index,
    ts: '2026-01-01T00:00:00.000Z',
    event: 'file.stored',
    actor: { agency: 'VN-LS', role: 'system', subject: SUBJECT },
    ...over,
  };
}

const stored = (i: number, agency = 'VN-LS', size = 10) =>
  entry(i, { event: 'file.stored', digest: D, detail: { agency, size } });
const accepted = (i: number) =>
  entry(i, {
    event: 'message.accepted',
    messageId: ID,
    digest: SUBJECT,
    from: 'VN-LS',
    to: 'CN-GX-CZ',
  });
const bound = (i: number, size = 10) =>
  entry(i, { event: 'file.bound', messageId: ID, digest: D, detail: { agency: 'VN-LS', size } });

function run(entries: AuditEntry[]): string[] {
  const c = new FileCustodyCheck();
  return entries.flatMap((e) => c.entry(e, e.index)).map((f) => `${f.reason}@${f.index}`);
}

describe('audit verify: evidence files stored before their transfer (protocol §9.4)', function () {
  it('accepts a file stored by the sender, with its size, before the acceptance', function () {
    expect(run([stored(0), accepted(1), bound(2)])).to.deep.equal([]);
  });

  it('reports a file stored only after the acceptance, by another agency, or with another size', function () {
    expect(run([accepted(0), bound(1), stored(2)])).to.deep.equal(['file-unstored@1']);
    expect(run([stored(0, 'CN-GX-CZ'), accepted(1), bound(2)])).to.deep.equal(['file-unstored@2']);
    expect(run([stored(0, 'VN-LS', 11), accepted(1), bound(2)])).to.deep.equal(['file-unstored@2']);
    expect(run([bound(0)])).to.deep.equal(['file-unstored@0']);
  });

  it('checks every item of a transfer JWS the bundle carries', function () {
    const c = new FileCustodyCheck();
    for (const e of [stored(0), accepted(1)]) c.entry(e, e.index);
    const env = (items: unknown[]) => ({ type: 'evidence.transfer', body: { items } });
    expect(c.transfer(ID, env([{ sha256: 'a'.repeat(64), size: 10 }]))).to.deep.equal([]);
    const bad = c.transfer(
      ID,
      env([
        { sha256: 'a'.repeat(64), size: 10 },
        { sha256: 'b'.repeat(64), size: 1 },
      ]),
    );
    expect(bad.map((f) => `${f.reason}@${f.index}`)).to.deep.equal(['file-unstored@1']);
  });
});
