/**
 * Offline verification speed (not a test: run `node dist/test/audit/verify.bench.js [entries] [exchanges]`).
 * Targets (brief): >= 20,000 entries/s without signature checks, >= 5,000/s with.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { verifyBundle } from '../../src/audit/verify.js';
import { verifyBundleFile } from '../../src/audit/bundle-file.js';
import { AGENCIES, TestLog, pki } from './fixtures/log.js';

const [CN, VN] = AGENCIES as unknown as [string, string];
const plainEntries = Number(process.argv[2] ?? 200_000);
const exchanges = Number(process.argv[3] ?? 2_500);

async function timed(
  label: string,
  entries: number,
  run: () => Promise<{ ok: boolean; entries: number }>,
): Promise<void> {
  const t0 = performance.now();
  const r = await run();
  const s = (performance.now() - t0) / 1000;
  console.log(
    `${label}: ${r.entries} entries in ${s.toFixed(2)} s = ${Math.round(entries / s)} entries/s (ok=${r.ok})`,
  );
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'casebridge-bench-'));
  try {
    // 1. Metadata-only log: realistic entry sizes, a checkpoint every 1000 entries.
    const plain = new TestLog(undefined, 1000);
    const subject = pki().gateway.subject;
    for (let i = 0; i < plainEntries; i++) {
      const digest = `sha256:${createHash('sha256').update(String(i)).digest('hex')}`;
      plain.append({
        event: i % 4 === 0 ? 'message.queued' : 'message.claimed',
        actor: { agency: 'GW-DEMO', role: 'gateway', subject },
        messageId: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
        digest,
        from: CN,
        to: VN,
        type: 'evidence.request',
      });
    }
    if (plain.size % 1000 !== 0) plain.checkpoint();
    const plainLines = await plain.bundle({ messages: false });
    await timed('no signatures, in memory', plain.size, () =>
      verifyBundle(plainLines, {
        checkSignatures: false,
        trustBundleKey: true,
        trustBundleAnchors: true,
      }),
    );
    const plainPath = join(dir, 'plain.ndjson');
    writeFileSync(plainPath, plainLines.join('\n') + '\n');
    await timed('no signatures, from file', plain.size, () =>
      verifyBundleFile(plainPath, {
        checkSignatures: false,
        trustBundleKey: true,
        trustBundleAnchors: true,
      }),
    );

    // 2. Full exchanges with messages and receipts (4 JWS per 8 entries).
    const full = new TestLog(undefined, 100);
    for (let i = 0; i < exchanges; i++)
      await full.exchange(i % 2 === 0 ? CN : VN, i % 2 === 0 ? VN : CN);
    if (full.size % 100 !== 0) full.checkpoint();
    const fullLines = await full.bundle({ messages: true });
    const fullPath = join(dir, 'full.ndjson');
    writeFileSync(fullPath, fullLines.join('\n') + '\n');
    await timed('with signatures, from file', full.size, () =>
      verifyBundleFile(fullPath, {
        checkSignatures: true,
        trustBundleKey: true,
        trustBundleAnchors: true,
      }),
    );
    await timed('messages, no signatures, from file', full.size, () =>
      verifyBundleFile(fullPath, {
        checkSignatures: false,
        trustBundleKey: true,
        trustBundleAnchors: true,
      }),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
