/**
 * Servers under test, each in a process of its own (not the bench client's), so
 * that RSS and CPU time are theirs alone:
 * - `gateway`: the real gateway from CASEBRIDGE_* variables, logging at info as
 *   JSON into a sink (formatting is kept, the bytes are dropped);
 * - `bare`: an HTTPS + mutual-TLS express endpoint that reads the body and only
 *   answers 202, with the gateway's certificate and trust anchors: the cost of
 *   HTTP and TLS alone, for the ratios.
 * BENCH_CPU_PROF=<dir> starts the gateway with `node --cpu-prof` into that directory.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { fileURLToPath, pathToFileURL } from 'node:url';
import express from 'express';
import winston from 'winston';
import { startGateway } from '../src/app.js';
import { loadConfig } from '../src/config/index.js';

type Kind = 'gateway' | 'bare';

type Request =
  { kind: 'delivered' } | { kind: 'lags'; ids: string[] } | { kind: 'loop' } | { kind: 'stop' };

type Reply =
  | { kind: 'ready'; url: string }
  | { kind: 'delivered'; n: number }
  | { kind: 'lags'; lags: number[] }
  | { kind: 'loop'; activeMs: number }
  | { kind: 'stopped' };

export interface ServerProcess {
  readonly url: string;
  readonly pid: number;
  /** Resident set size now, MiB (Linux /proc). */
  rssMb(): number;
  /** Highest resident set size so far, MiB (Linux VmHWM). */
  peakRssMb(): number;
  /** User + system CPU time so far, ms. */
  cpuMs(): number;
  /** Gateway only: messages recorded in an inbox so far. */
  delivered(): Promise<number>;
  /** Gateway only: ms from `accepted` to `delivered` in each message's history. */
  lags(ids: readonly string[]): Promise<number[]>;
  /**
   * Gateway only: ms its main event loop has been busy so far (eventLoopUtilization).
   * What a request costs the thread that serves HTTP, whichever threads help it.
   */
  loopMs(): Promise<number>;
  stop(): Promise<void>;
}

function procStatusMb(pid: number, field: string): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
  return m ? Number(m[1]) / 1024 : NaN;
}

function procCpuMs(pid: number): number {
  // Fields 14 and 15 of /proc/pid/stat, after the parenthesised command name.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  return (ticks * 1000) / 100; // USER_HZ is 100 on Linux
}

/** Starts a server process; `env` holds its CASEBRIDGE_* configuration. */
export async function startServer(kind: Kind, env: Record<string, string>): Promise<ServerProcess> {
  const prof = process.env['BENCH_CPU_PROF'];
  const child: ChildProcess = fork(fileURLToPath(import.meta.url), [kind], {
    env: { ...process.env, ...env },
    execArgv: kind === 'gateway' && prof ? ['--cpu-prof', '--cpu-prof-dir', prof] : [],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const replies: Reply[] = [];
  let wake: (() => void) | undefined;
  let exited: Error | undefined;
  child.on('message', (m: Reply) => {
    replies.push(m);
    wake?.();
  });
  child.on('exit', (code) => {
    exited = new Error(`${kind} process exited with ${code}`);
    wake?.();
  });
  const next = async <K extends Reply['kind']>(k: K): Promise<Extract<Reply, { kind: K }>> => {
    for (;;) {
      const i = replies.findIndex((r) => r.kind === k);
      if (i >= 0) return replies.splice(i, 1)[0] as Extract<Reply, { kind: K }>;
      if (exited) throw exited;
      await new Promise<void>((r) => (wake = r));
    }
  };
  const ask = <K extends Reply['kind']>(req: Request, k: K) => {
    child.send(req);
    return next(k);
  };
  const { url } = await next('ready');
  const pid = child.pid!;
  return {
    url,
    pid,
    rssMb: () => procStatusMb(pid, 'VmRSS'),
    peakRssMb: () => procStatusMb(pid, 'VmHWM'),
    cpuMs: () => procCpuMs(pid),
    delivered: async () => (await ask({ kind: 'delivered' }, 'delivered')).n,
    lags: async (ids) => (await ask({ kind: 'lags', ids: [...ids] }, 'lags')).lags,
    loopMs: async () => (await ask({ kind: 'loop' }, 'loop')).activeMs,
    async stop() {
      if (exited) return;
      await ask({ kind: 'stop' }, 'stopped');
      await new Promise<void>((r) => (exited ? r() : child.once('exit', () => r())));
    },
  };
}

// ---- inside the child --------------------------------------------------------

const sinkLogger = () =>
  winston.createLogger({
    level: 'info',
    format: winston.format.json(),
    transports: [
      new winston.transports.Stream({ stream: new Writable({ write: (_c, _e, cb) => cb() }) }),
    ],
  });

type Send = (r: Reply) => Promise<void>;

async function runGateway(send: Send): Promise<(req: Request) => Promise<void>> {
  const gw = await startGateway({ config: loadConfig(process.env), logger: sinkLogger() });
  await send({ kind: 'ready', url: gw.url });
  return async (req) => {
    switch (req.kind) {
      case 'delivered': {
        const m = await gw.metrics.delivered.get();
        await send({ kind: 'delivered', n: m.values.reduce((a, v) => a + v.value, 0) });
        return;
      }
      case 'lags': {
        const lags: number[] = [];
        for (const id of req.ids) {
          const h = await gw.store.history(id);
          const a = h.find((x) => x.status === 'accepted');
          const d = h.find((x) => x.status === 'delivered');
          if (a && d) lags.push(Date.parse(d.at) - Date.parse(a.at));
        }
        await send({ kind: 'lags', lags });
        return;
      }
      case 'loop':
        await send({ kind: 'loop', activeMs: performance.eventLoopUtilization().active });
        return;
      case 'stop':
        await gw.close();
        await send({ kind: 'stopped' });
        process.exit(0);
    }
  };
}

async function runBare(send: Send): Promise<(req: Request) => Promise<void>> {
  const read = (v: string) => readFileSync(process.env[v]!, 'utf8');
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.post('/v1/messages', express.raw({ type: () => true, limit: '1mb' }), (_req, res) => {
    res.status(202).json({ status: 'accepted' });
  });
  const server = createServer(
    {
      key: read('CASEBRIDGE_TLS_KEY'),
      cert: read('CASEBRIDGE_TLS_CERT'),
      ca: read('CASEBRIDGE_TRUST'),
      requestCert: true,
      rejectUnauthorized: true,
      minVersion: 'TLSv1.2',
    },
    app,
  );
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  await send({ kind: 'ready', url: `https://127.0.0.1:${(server.address() as AddressInfo).port}` });
  return async (req) => {
    if (req.kind === 'stop') {
      server.closeAllConnections();
      server.close();
      await send({ kind: 'stopped' });
      process.exit(0);
    }
  };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const kind = process.argv[2] as Kind;
  const send: Send = (r) =>
    new Promise((resolve, reject) =>
      process.send!(r, undefined, {}, (e) => (e ? reject(e) : resolve())),
    );
  const handle = await (kind === 'gateway' ? runGateway(send) : runBare(send));
  process.on('message', (req: Request) => void handle(req));
}
