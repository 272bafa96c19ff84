/**
 * `npm run bench`: every benchmark of the project, each beside the baseline it is
 * judged against, measured in the same run. BENCH_QUICK=1 shrinks the sizes for a
 * smoke run; the figures quoted in notes come from a full run. `node
 * dist/bench/run.js NAME…` runs only the named ones.
 *
 * The last line printed is one JSON object: { name: { key: number } }. Several
 * entries may share a name (their keys are merged), so a module adds figures to
 * a group such as `flood` by adding an entry of its own below.
 */
import { benchAuditVerify, benchProofs } from './audit.js';
import type { PipelineSizes } from './pipeline.js';

const quick = process.env['BENCH_QUICK'] === '1';
const only = process.argv.slice(2);

type Bench = { name: string; run: () => Promise<Record<string, number>> };

const pipelineSizes: PipelineSizes = {
  messages: quick ? 1_000 : 5_000,
  soakSeconds: Number(process.env['BENCH_SOAK_S'] ?? (quick ? 20 : 300)),
  soakWarmSeconds: quick ? 5 : 30,
  floodSeconds: quick ? 5 : 15,
};
const pipeline = () => import('./pipeline.js');

const benches: Bench[] = [
  {
    name: 'audit-verify',
    run: () => benchAuditVerify({ entries: quick ? 3_000 : 100_000 }),
  },
  {
    name: 'inclusion-proofs',
    run: () => benchProofs({ entries: quick ? 20_000 : 1_000_000, proofs: quick ? 1_000 : 20_000 }),
  },
  {
    name: 'store-lifecycle',
    run: async () => (await import('./store.js')).benchStore({ messages: quick ? 2_000 : 10_000 }),
  },
  { name: 'pipeline-embedded', run: async () => (await pipeline()).benchEmbedded(pipelineSizes) },
  { name: 'pipeline-rabbitmq', run: async () => (await pipeline()).benchRabbitmq(pipelineSizes) },
  { name: 'pipeline-batch', run: async () => (await pipeline()).benchBatch(pipelineSizes) },
  { name: 'soak', run: async () => (await pipeline()).benchSoak(pipelineSizes) },
  {
    // Body floods, then (issue 8) 5,000 unauthenticated handshakes with fresh 60 KB
    // certificates: `flood.unauth_cert_rss_growth_mb`.
    name: 'flood',
    run: async () => ({
      ...(await (await pipeline()).benchFlood(pipelineSizes)),
      ...(await (await import('./flood.js')).benchFlood({ connections: quick ? 500 : 5_000 })),
    }),
  },
  {
    // issue 11: PostgreSQL mode, one gateway and two on one database, beside raw broker confirms.
    name: 'pipeline-postgres',
    run: async () => (await import('./postgres.js')).benchPostgres(pipelineSizes, 1),
  },
  {
    name: 'pipeline-postgres-2',
    run: async () => (await import('./postgres.js')).benchPostgres(pipelineSizes, 2),
  },
  {
    name: 'evidence-files',
    run: async () => {
      const { benchFiles } = await import('./files.js');
      // BENCH_FILES_MIB sets the file size (the RSS figure is for 2 GiB).
      const mib = Number(process.env['BENCH_FILES_MIB'] ?? (quick ? 256 : 2048));
      return benchFiles({ bytes: mib * 1024 * 1024 });
    },
  },
];

function fmt(v: number): string {
  if (Number.isInteger(v)) return String(v);
  return Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(3);
}

const results: Record<string, Record<string, number>> = {};
for (const b of benches) {
  if (only.length > 0 && !only.includes(b.name)) continue;
  const t0 = performance.now();
  process.stderr.write(`bench ${b.name}…\n`);
  const r = await b.run();
  results[b.name] = { ...results[b.name], ...r };
  process.stdout.write(`\n${b.name} (${((performance.now() - t0) / 1000).toFixed(1)} s)\n`);
  for (const [k, v] of Object.entries(r)) process.stdout.write(`  ${k.padEnd(34)} ${fmt(v)}\n`);
}
process.stdout.write('\n' + JSON.stringify(results) + '\n');
process.exit(0);
