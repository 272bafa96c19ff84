/**
 * `npm run bench`: every benchmark of the project, each beside the baseline it is
 * judged against, measured in the same run. BENCH_QUICK=1 shrinks the sizes for a
 * smoke run; the figures quoted in notes come from a full run.
 */
import { benchAuditVerify, benchProofs } from './audit.js';

const quick = process.env['BENCH_QUICK'] === '1';
const only = process.argv.slice(2);

type Bench = { name: string; run: () => Promise<Record<string, number>> };

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
    name: 'pipeline-rabbitmq',
    run: async () => {
      const { benchPipeline } = await import('./pipeline.js');
      return benchPipeline({ messages: quick ? 500 : 5_000 });
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
  results[b.name] = r;
  process.stdout.write(`\n${b.name} (${((performance.now() - t0) / 1000).toFixed(1)} s)\n`);
  for (const [k, v] of Object.entries(r)) process.stdout.write(`  ${k.padEnd(34)} ${fmt(v)}\n`);
}
process.stdout.write('\n' + JSON.stringify(results) + '\n');
process.exit(0);
