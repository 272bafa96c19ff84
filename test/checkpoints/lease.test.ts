import assert from 'node:assert/strict';
import { LeaseKeeper } from '../../src/checkpoints/lease.js';
import type { SignerLease } from '../../src/checkpoints/ports.js';

/** A lease on one clock shared by every keeper, as a database row would be. */
function sharedLease() {
  let holder: string | undefined;
  let expiresAt = 0;
  const dead = new Set<string>();
  const lease: SignerLease = {
    async acquire(who, ttlMs) {
      if (dead.has(who)) throw new Error('connection lost');
      const now = Date.now();
      if (holder === undefined || holder === who || expiresAt <= now) {
        holder = who;
        expiresAt = now + ttlMs;
      }
      return holder === who;
    },
    async release(who) {
      if (holder === who) holder = undefined;
    },
  };
  return { lease, dead, holder: () => holder };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('checkpoints: the signer lease (protocol §11)', function () {
  it('lets exactly one keeper hold it, and moves it within ttl + renew interval when the holder dies', async function () {
    const { lease, dead } = sharedLease();
    const opts = { lease, ttlMs: 400, renewMs: 100 };
    const a = new LeaseKeeper({ ...opts, holder: 'a' });
    const b = new LeaseKeeper({ ...opts, holder: 'b' });
    await a.start();
    await b.start();
    assert.equal(a.held, true);
    assert.equal(b.held, false);
    await sleep(300);
    assert.equal(a.held, true, 'renewed while alive');
    assert.equal(b.held, false);

    dead.add('a'); // it stops renewing, as a killed process does
    const died = Date.now();
    while (!b.held && Date.now() - died < 2000) await sleep(20);
    const moved = Date.now() - died;
    assert.equal(b.held, true, 'the survivor took the lease');
    assert.ok(moved <= 400 + 100 + 100, `moved after ${moved} ms`);
    assert.equal(a.held, false, 'the dead holder no longer believes it holds the lease');
    await a.stop();
    await b.stop();
  });

  it('gives the lease up at shutdown, so the standby takes it at its next renewal', async function () {
    const { lease, holder } = sharedLease();
    const opts = { lease, ttlMs: 5000, renewMs: 50 };
    const a = new LeaseKeeper({ ...opts, holder: 'a' });
    const b = new LeaseKeeper({ ...opts, holder: 'b' });
    const changes: boolean[] = [];
    const c = new LeaseKeeper({ ...opts, holder: 'c', onChange: (h) => changes.push(h) });
    await a.start();
    await b.start();
    await a.stop();
    assert.equal(holder(), undefined);
    await sleep(150);
    assert.equal(holder(), 'b');
    assert.equal(b.held, true);
    await c.start();
    await b.stop();
    await sleep(150);
    assert.equal(c.held, true);
    await c.stop();
    assert.deepEqual(changes, [true, false]);
  });
});
