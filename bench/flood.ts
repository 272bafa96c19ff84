/**
 * The unauthenticated-certificate flood: `connections` TLS connections, each with
 * a fresh ~60 KB self-signed client certificate, each refused with 401, against a
 * gateway in its own process. Reports how far the gateway's RSS grew over its
 * warmed-up baseline (target: at most 64 MiB for 5,000 connections).
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { Gateway } from '../src/app.js';
import { testEnv } from '../test/helpers/gateway.js';
import { flood, floodCertificates } from '../test/helpers/flood.js';

const MAIN = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));
const MIB = 1024 * 1024;

function rssOf(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
  return kb * 1024;
}

export async function benchFlood(opts: { connections: number }): Promise<Record<string, number>> {
  const env = await testEnv({ CASEBRIDGE_LOG_LEVEL: 'warn' });
  const child = spawn(process.execPath, [MAIN, 'serve'], {
    env: { ...process.env, ...env, CASEBRIDGE_LOG_LEVEL: 'info' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  try {
    // The log goes to stderr; its start line names the URL.
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      const onData = (d: Buffer) => {
        out += d.toString('utf8');
        const m = /"url":"(https:\/\/[^"]+)"/.exec(out);
        if (m) {
          child.stderr.off('data', onData);
          child.stderr.resume();
          resolve(m[1]!);
        }
      };
      child.stderr.on('data', onData);
      child.once('exit', (code) => reject(new Error(`gateway exited with ${code}`)));
    });
    const gw = { url } as Gateway;
    const certs = floodCertificates();
    // Warm up: TLS, JIT and the allocator settle before the baseline is taken.
    await flood(gw, certs, Number(process.env['FLOOD_WARMUP'] ?? 200), 8);
    await new Promise((r) => setTimeout(r, 500));
    const baseline = rssOf(child.pid!);
    let peak = baseline;
    const sampler = setInterval(() => (peak = Math.max(peak, rssOf(child.pid!))), 100);
    const t0 = performance.now();
    const statuses = await flood(gw, certs, opts.connections, 8);
    const seconds = (performance.now() - t0) / 1000;
    clearInterval(sampler);
    const end = rssOf(child.pid!);
    peak = Math.max(peak, end);
    return {
      unauth_cert_connections: opts.connections,
      unauth_cert_refused_401: statuses.get(401) ?? 0,
      unauth_cert_kb: Math.round(certs.bytes / 1024),
      unauth_cert_connections_per_s: opts.connections / seconds,
      unauth_cert_baseline_rss_mb: baseline / MIB,
      unauth_cert_rss_growth_mb: (peak - baseline) / MIB,
      unauth_cert_end_rss_growth_mb: (end - baseline) / MIB,
    };
  } finally {
    child.kill('SIGTERM');
  }
}
