/**
 * The embedded store alone: a whole message lifecycle (accept, queued,
 * delivered) for `messages` messages, 64 in flight, in this process. Its figure
 * is the event loop's busy time per message (`loop_ms_per_msg`, from
 * eventLoopUtilization), which is what the store takes from request handling;
 * it is far steadier than a rate on a shared machine, and the process's CPU time
 * per message (`cpu_ms_per_msg`), which a flush on the thread pool barely adds to. `flush_ms` is the baseline:
 * one fdatasync of a small write in the same directory, the floor of a commit.
 */
import { closeSync, fdatasyncSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { AuditActor } from '../src/audit/types.js';
import { digestOf } from '../src/envelope/jws.js';
import { envelopeDigest } from '../src/messages/replay.js';
import { SqliteStore, type NewMessage } from '../src/store/index.js';
import { sampleEnvelope } from '../test/fixtures/envelopes.js';

const ACTOR: AuditActor = {
  agency: 'CN-GX-CZ',
  role: 'system',
  subject: 'sha256:' + 'c'.repeat(64),
};
const IN_FLIGHT = 64;

function message(): NewMessage {
  const envelope = sampleEnvelope('evidence.request');
  const payload = Buffer.from(JSON.stringify(envelope)).toString('base64url');
  // A compact JWS of the bench's size (about 3.2 KB); the store keeps bytes as given.
  const jws = `eyJhbGciOiJFUzI1NiJ9.${payload}.${'s'.repeat(86)}`;
  return {
    id: envelope.id,
    digest: digestOf(jws),
    envelopeDigest: envelopeDigest(envelope),
    jws,
    envelope,
    actor: ACTOR,
  };
}

async function lifecycle(dir: string, n: number) {
  const store = new SqliteStore({ dataDir: dir });
  const msgs = Array.from({ length: n }, message);
  const elu0 = performance.eventLoopUtilization();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let next = 0;
  const worker = async () => {
    while (next < msgs.length) {
      const m = msgs[next++]!;
      await store.accept(m, (i) => `receipt-${i}`);
      await store.markQueued([m.id], ACTOR);
      await store.deliver(m.id, m.digest, ACTOR);
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  const wallMs = performance.now() - t0;
  const elu = performance.eventLoopUtilization(elu0);
  const cpu = process.cpuUsage(cpu0);
  await store.close();
  return {
    rate: Math.round((n * 1000) / wallMs),
    loopMsPerMsg: elu.active / n,
    cpuMsPerMsg: (cpu.user + cpu.system) / 1000 / n,
  };
}

export async function benchStore(opts: { messages: number }): Promise<Record<string, number>> {
  const dir = mkdtempSync(join(tmpdir(), 'casebridge-bench-store-'));
  try {
    await lifecycle(join(dir, 'warm'), Math.min(500, opts.messages));
    const r = await lifecycle(join(dir, 'run'), opts.messages);
    const fd = openSync(join(dir, 'flush'), 'w');
    const t0 = performance.now();
    for (let i = 0; i < 200; i++) {
      writeSync(fd, Buffer.alloc(4096, i));
      fdatasyncSync(fd);
    }
    const flushMs = (performance.now() - t0) / 200;
    closeSync(fd);
    return {
      messages: opts.messages,
      flush_ms: Number(flushMs.toFixed(3)),
      lifecycle_rate: r.rate,
      loop_ms_per_msg: Number(r.loopMsPerMsg.toFixed(4)),
      cpu_ms_per_msg: Number(r.cpuMsPerMsg.toFixed(4)),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
