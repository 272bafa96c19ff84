/**
 * Audit-log benchmarks (issue: verifiable audit log):
 * - offline verification of a real export (SqliteStore + exportBundle) of about
 *   100,000 entries, with and without per-message signature checks, against the
 *   raw SHA-256 leaf-hashing rate of the same bytes (the irreducible cost);
 * - inclusion-proof generation on a 1,000,000-entry SQLite log, against the cost
 *   of one stored-node read.
 */
import { createHash, createPrivateKey, randomUUID } from 'node:crypto';
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { vkeyFor } from '../src/audit/checkpoint.js';
import { exportBundle } from '../src/audit/export.js';
import { verifyBundleFile } from '../src/audit/bundle-file.js';
import { inclusionProof, leafHash, rootHash } from '../src/audit/merkle.js';
import { signCheckpoint } from '../src/audit/checkpoint.js';
import type { AuditActor } from '../src/audit/types.js';
import { digestOf } from '../src/envelope/jws.js';
import { envelopeDigest } from '../src/messages/replay.js';
import { signMessage } from '../src/envelope/sign.js';
import { receiptMaker } from '../src/submission/submit.js';
import { generateDevPki } from '../src/pki/dev-pki.js';
import { parsePemChain } from '../src/pki/pem.js';
import { SqliteStore } from '../src/store/index.js';
import { sampleEnvelope } from '../test/fixtures/envelopes.js';

const ORIGIN = 'casebridge/GW-DEMO';

function identity(files: Record<string, string>, base: string) {
  return {
    key: createPrivateKey(files[`${base}.key.pem`]!),
    chain: parsePemChain(files[`${base}.crt.pem`]!),
  };
}

async function checkpoint(
  store: SqliteStore,
  key: ReturnType<typeof createPrivateKey>,
): Promise<void> {
  const size = await store.treeSize();
  const root = rootHash(size, store.nodes());
  await store.addCheckpoint({
    size,
    root,
    text: signCheckpoint({ origin: ORIGIN, size, root }, ORIGIN, key),
    signedAt: new Date().toISOString(),
  });
}

export async function benchAuditVerify(opts: { entries: number }): Promise<Record<string, number>> {
  const dir = mkdtempSync(join(tmpdir(), 'casebridge-bench-audit-'));
  try {
    const files = generateDevPki({ gatewayId: 'GW-DEMO' });
    const sender = identity(files, 'agencies/CN-GX-CZ/system');
    const gateway = identity(files, 'gateway/gateway');
    const logKey = createPrivateKey(files['log/log.key.pem']!);
    const store = new SqliteStore({ dataDir: dir });
    const actor: AuditActor = {
      agency: 'CN-GX-CZ',
      role: 'system',
      subject: 'sha256:' + '0'.repeat(64),
    };
    const gw: AuditActor = {
      agency: 'GW-DEMO',
      role: 'gateway',
      subject: 'sha256:' + '1'.repeat(64),
    };

    // Each message makes three entries: accepted, queued, delivered (as in the gateway).
    const messages = Math.ceil(opts.entries / 3);
    const batch = 500;
    for (let done = 0; done < messages; done += batch) {
      const n = Math.min(batch, messages - done);
      const ids: string[] = [];
      const accepted = Array.from({ length: n }, () => {
        const env = sampleEnvelope('evidence.request', { id: randomUUID() });
        const jws = signMessage(env, sender);
        const digest = digestOf(jws);
        ids.push(env.id);
        return store.accept(
          { id: env.id, digest, envelopeDigest: envelopeDigest(env), jws, envelope: env, actor },
          receiptMaker(env, digest, gateway),
        );
      });
      await Promise.all(accepted);
      await Promise.all(
        ids.map(async (id) => store.deliver(id, (await store.getMessage(id))!.digest, gw)),
      );
      await store.markQueued(ids, gw);
      if (done % 5000 === 0) await checkpoint(store, logKey);
    }
    await checkpoint(store, logKey);
    const size = await store.treeSize();

    const path = join(dir, 'export.ndjson');
    const out = createWriteStream(path);
    for await (const line of exportBundle(
      {
        store,
        origin: ORIGIN,
        vkey: vkeyFor(ORIGIN, logKey),
        gatewayChain: gateway.chain.map((c) => c.toString()),
        trustAnchors: parsePemChain(files['trust.pem']!).map((c) => c.toString()),
        messagesFor: (ids) =>
          Promise.all(
            ids.map(async (id) => {
              const m = (await store.getMessage(id))!;
              return {
                id,
                jws: m.jws!,
                receipt: (JSON.parse(m.response) as { receipt: string }).receipt,
              };
            }),
          ),
      },
      { messages: true },
    )) {
      if (!out.write(line + '\n')) await once(out, 'drain');
    }
    out.end();
    await once(out, 'finish');

    // Baseline: SHA-256 over every leaf with the RFC 6962 prefix, nothing else.
    const entries = await store.entries(0, size);
    let t0 = performance.now();
    for (const e of entries) leafHash(e.bytes);
    const hashRate = size / ((performance.now() - t0) / 1000);

    t0 = performance.now();
    const plain = await verifyBundleFile(path, {
      checkSignatures: false,
      trustBundleKey: true,
      trustBundleAnchors: true,
    });
    const plainRate = size / ((performance.now() - t0) / 1000);
    t0 = performance.now();
    const signed = await verifyBundleFile(path, {
      checkSignatures: true,
      trustBundleKey: true,
      trustBundleAnchors: true,
    });
    const signedRate = size / ((performance.now() - t0) / 1000);
    if (!plain.ok || !signed.ok)
      throw new Error(`bench export did not verify: ${JSON.stringify(signed.firstFailure)}`);
    store.close();
    return {
      entries: size,
      messagesInExport: signed.messages,
      leafHashRate: Math.round(hashRate),
      verifyRateNoSignatures: Math.round(plainRate),
      verifyRateWithSignatures: Math.round(signedRate),
      ratioNoSignaturesToHashing: plainRate / hashRate,
      ratioWithSignaturesToHashing: signedRate / hashRate,
      ratioNoSignaturesToTarget20k: plainRate / 20_000,
      ratioWithSignaturesToTarget5k: signedRate / 5_000,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function benchProofs(opts: {
  entries: number;
  proofs: number;
}): Promise<Record<string, number>> {
  const dir = mkdtempSync(join(tmpdir(), 'casebridge-bench-proof-'));
  try {
    const store = new SqliteStore({ dataDir: dir, maxBatch: 4096 });
    const actor: AuditActor = {
      agency: 'GW-DEMO',
      role: 'gateway',
      subject: 'sha256:' + '1'.repeat(64),
    };
    const t0 = performance.now();
    const chunk = 20_000;
    for (let i = 0; i < opts.entries; i += chunk) {
      const n = Math.min(chunk, opts.entries - i);
      const writes: Promise<unknown>[] = [];
      for (let j = 0; j < n; j++) {
        const k = i + j;
        writes.push(
          store.append({
            event: 'message.queued',
            actor,
            messageId: `00000000-0000-4000-8000-${String(k).padStart(12, '0')}`,
            digest: 'sha256:' + createHash('sha256').update(String(k)).digest('hex'),
            from: 'CN-GX-CZ',
            to: 'VN-LS',
            type: 'evidence.request',
          }),
        );
      }
      await Promise.all(writes);
    }
    const buildS = (performance.now() - t0) / 1000;
    const size = await store.treeSize();
    const src = store.nodes();

    // Baseline: one stored-node read.
    const reads = 100_000;
    let t1 = performance.now();
    for (let i = 0; i < reads; i++) src.node(0, Math.floor(Math.random() * size));
    const nodeReadUs = ((performance.now() - t1) * 1000) / reads;

    t1 = performance.now();
    for (let i = 0; i < opts.proofs; i++)
      inclusionProof(Math.floor(Math.random() * size), size, src);
    const proofUs = ((performance.now() - t1) * 1000) / opts.proofs;
    store.close();
    return {
      entries: size,
      buildSeconds: buildS,
      appendsPerSecond: Math.round(size / buildS),
      nodeReadMicros: nodeReadUs,
      inclusionProofMicros: proofUs,
      ratioProofToNodeRead: proofUs / nodeReadUs,
      ratioProofToTarget1ms: proofUs / 1000,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
