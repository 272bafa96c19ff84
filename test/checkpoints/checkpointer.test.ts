import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { MemoryTree } from '../../src/audit/merkle.js';
import { Checkpointer } from '../../src/checkpoints/index.js';
import { StoreUnavailableError } from '../../src/store/index.js';
import type { AuditStore, Checkpoint } from '../../src/store/types.js';

/** An audit store whose checkpoint writes fail while `full` is set, like a full disk. */
function storeWithDisk() {
  const tree = new MemoryTree();
  const cps: Checkpoint[] = [];
  const disk = { full: false };
  const store: AuditStore = {
    treeSize: () => tree.size,
    entries: () => [],
    nodes: () => tree,
    append: () => Promise.reject(new Error('not used')),
    latestCheckpoint: () => cps.at(-1),
    checkpointAt: (n) => cps.find((c) => c.size === n),
    checkpoints: () => cps,
    addCheckpoint(cp) {
      if (disk.full) throw new StoreUnavailableError('disk-full', 'SQLITE_FULL');
      cps.push(cp);
    },
  };
  return { tree, cps, disk, store };
}

describe('checkpoints: the signing timer (protocol §6.3)', () => {
  it('survives a failing store on its timer, logs once, reports staleness, and signs again once it can', async () => {
    const { tree, cps, disk, store } = storeWithDisk();
    const errors: unknown[] = [];
    const cp = new Checkpointer({
      store,
      origin: 'casebridge/GW-TEST',
      keyName: 'casebridge/GW-TEST',
      key: generateKeyPairSync('ed25519').privateKey,
      intervalMs: 20,
      now: () => new Date(),
      logger: { info() {}, error: (_m, meta) => errors.push(meta) },
    });
    tree.append(Buffer.from('a'));
    cp.start();
    assert.equal(cps.length, 1);
    assert.equal(cp.staleSeconds(), 0);

    disk.full = true;
    tree.append(Buffer.from('b'));
    // An exception escaping the interval would end this process (mocha reports it).
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(cps.length, 1);
    assert.equal(errors.length, 1, 'logged once, not on every tick');
    assert.equal((errors[0] as { code?: string }).code, 'UNAVAILABLE');
    assert.ok(cp.staleSeconds() >= 0.1, `stale for ${cp.staleSeconds()} s`);

    disk.full = false;
    await new Promise((r) => setTimeout(r, 100));
    cp.stop();
    assert.equal(cps.at(-1)?.size, 2, 'signed again once the store writes');
    assert.equal(cp.staleSeconds(), 0);
  });
});
