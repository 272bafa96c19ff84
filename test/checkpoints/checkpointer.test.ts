import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { MemoryTree } from '../../src/audit/merkle.js';
import { Checkpointer } from '../../src/checkpoints/index.js';
import { StoreUnavailableError } from '../../src/store/index.js';
import type { AuditLog, Checkpoint, CheckpointStore } from '../../src/audit/types.js';

/** An audit store whose checkpoint writes fail while `full` is set, like a full disk. */
function storeWithDisk() {
  const tree = new MemoryTree();
  const cps: Checkpoint[] = [];
  const disk = { full: false };
  const store: AuditLog & CheckpointStore = {
    treeSize: async () => tree.size,
    entries: async () => [],
    nodesAt: async (coords) => coords.map((c) => tree.node(c.level, c.index)),
    append: () => Promise.reject(new Error('not used')),
    latestCheckpoint: async () => cps.at(-1),
    checkpointAt: async (n) => cps.find((c) => c.size === n),
    checkpoints: async () => cps,
    async addCheckpoint(cp) {
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
    await new Promise((r) => setTimeout(r, 10));
    assert.equal(cps.length, 1);
    assert.equal(await cp.staleSeconds(), 0);

    disk.full = true;
    tree.append(Buffer.from('b'));
    // An exception escaping the interval would end this process (mocha reports it).
    await new Promise((r) => setTimeout(r, 150));
    assert.equal(cps.length, 1);
    assert.equal(errors.length, 1, 'logged once, not on every tick');
    assert.equal((errors[0] as { code?: string }).code, 'UNAVAILABLE');
    const stale = await cp.staleSeconds();
    assert.ok(stale >= 0.1, `stale for ${stale} s`);

    disk.full = false;
    await new Promise((r) => setTimeout(r, 100));
    cp.stop();
    assert.equal(cps.at(-1)?.size, 2, 'signed again once the store writes');
    assert.equal(await cp.staleSeconds(), 0);
  });

  it('signs a last checkpoint covering the whole log at shutdown, even while a tick that read an older size is still under way', async () => {
    const { tree, cps, store } = storeWithDisk();
    // The timer's tick reads the tree size, then waits on the store while entries are added.
    let release: () => void = () => {};
    const held = new Promise<void>((r) => (release = r));
    let hold = true;
    const slow = {
      ...store,
      async latestCheckpoint() {
        if (hold) await held;
        return store.latestCheckpoint();
      },
    };
    const cp = new Checkpointer({
      store: slow,
      origin: 'casebridge/GW-TEST',
      keyName: 'casebridge/GW-TEST',
      key: generateKeyPairSync('ed25519').privateKey,
      intervalMs: 60_000,
      now: () => new Date(),
    });
    tree.append(Buffer.from('a'));
    const running = cp.tick();
    await new Promise((r) => setTimeout(r, 10));
    tree.append(Buffer.from('b'));
    tree.append(Buffer.from('c'));
    const last = cp.final();
    hold = false;
    release();
    await Promise.all([running, last]);
    assert.equal(cps.at(-1)?.size, 3, 'the last checkpoint covers every entry');
  });
});
