import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { FileEpochKeys } from '../../src/retention/keys.js';

describe('retention: epoch keys shared by several gateways', function () {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'casebridge-keys-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('gives two processes that start the same day the same key, and leaves no temporary file', function () {
    const dataKey = randomBytes(32);
    const a = new FileEpochKeys(dir, dataKey);
    const b = new FileEpochKeys(dir, dataKey);
    const fromA = a.get('2026-12-02', true)!;
    const fromB = b.get('2026-12-02', true)!;
    expect(fromB.equals(fromA)).to.equal(true);
    expect(readdirSync(dir)).to.deep.equal(['epoch-2026-12-02.key']);
  });

  it('keeps the first key when a second process creates one for the same day at the same moment', function () {
    const dataKey = randomBytes(32);
    const first = new FileEpochKeys(dir, dataKey);
    const late = new FileEpochKeys(dir, dataKey);
    const key = first.get('2026-12-03', true)!;
    // The late one had found no file and goes on to create its own: it loses, and reads the winner's.
    (late as unknown as { create(epoch: string, path: string): void }).create(
      '2026-12-03',
      join(dir, 'epoch-2026-12-03.key'),
    );
    expect(late.get('2026-12-03', false)!.equals(key)).to.equal(true);
    expect(new FileEpochKeys(dir, dataKey).get('2026-12-03', false)!.equals(key)).to.equal(true);
    expect(readdirSync(dir)).to.deep.equal(['epoch-2026-12-03.key']);
  });
});
