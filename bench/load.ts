/**
 * The bench client (not a test): the agencies' side, in a worker thread of the
 * bench process, so its TLS and HTTP work never shares the event loop of the
 * server under test (which runs in a process of its own). One keep-alive agent
 * per client, so handshakes happen in the warm-up and are not measured.
 *
 * Commands, each answered with one report:
 * - `closed`: send every body, `connections` at a time, as fast as answers come;
 * - `open`: send at a fixed rate whatever the answers do, and time each request;
 * - `soak`: like `open`, signing fresh messages on the fly, for a duration;
 * - `flood`: keep `connections` requests of one body in flight for a duration.
 */
import { createPrivateKey } from 'node:crypto';
import { Agent, request } from 'node:https';
import { parentPort, Worker, workerData, type MessagePort } from 'node:worker_threads';
import { signMessage } from '../src/envelope/sign.js';
import { parsePemChain } from '../src/pki/pem.js';
import { sampleEnvelope } from '../test/fixtures/envelopes.js';

export interface ClientSetup {
  role: 'casebridge-bench-load';
  url: string;
  cert: string;
  key: string;
  ca: string;
  connections: number;
}

export interface Target {
  path: string;
  contentType: string;
  /** The status every answer must have; for a batch, also of every answer line. */
  expect: number;
  lineStatus?: number;
}

export type Command =
  | { cmd: 'closed'; target: Target; bodies: string[] }
  | { cmd: 'open'; target: Target; bodies: string[]; rate: number }
  | { cmd: 'soak'; target: Target; rate: number; seconds: number; from: string; to: string }
  | { cmd: 'flood'; target: Target; body: string; seconds: number };

export interface Report {
  ms: number;
  sent: number;
  failures: number;
  firstFailure?: string;
  /** `open` and `soak`: milliseconds of each request, in send order. */
  latencies?: number[];
  /** `soak`: the ids sent. */
  ids?: string[];
  /** `flood`: answers by status. */
  statuses?: Record<string, number>;
}

interface Answer {
  status: number;
  text: string;
}

function client(setup: ClientSetup) {
  const agent = new Agent({
    keepAlive: true,
    maxSockets: setup.connections,
    cert: setup.cert,
    key: setup.key,
    ca: setup.ca,
  });
  const send = (target: Target, body: string, keepText: boolean) =>
    new Promise<Answer>((resolve, reject) => {
      const req = request(
        new URL(target.path, setup.url),
        {
          method: 'POST',
          agent,
          servername: 'localhost',
          headers: {
            'content-type': target.contentType,
            'content-length': Buffer.byteLength(body),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => keepText && chunks.push(c));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }),
          );
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(body);
    });

  /** Throws unless the answer is what `target` expects. */
  const check = (target: Target, a: Answer, lines: number) => {
    if (a.status !== target.expect) throw new Error(`answered ${a.status}`);
    if (target.lineStatus !== undefined) {
      const ok = a.text.split(`"status":${target.lineStatus},`).length - 1;
      if (ok !== lines) throw new Error(`${lines - ok} of ${lines} lines not ${target.lineStatus}`);
    }
  };
  const lineCount = (body: string) => body.split('\n').filter((l) => l.length > 0).length;

  async function closed(target: Target, bodies: readonly string[]): Promise<Report> {
    let next = 0;
    let failures = 0;
    let firstFailure: string | undefined;
    const t0 = performance.now();
    const worker = async () => {
      while (next < bodies.length) {
        const body = bodies[next++]!;
        try {
          check(target, await send(target, body, target.lineStatus !== undefined), lineCount(body));
        } catch (e) {
          failures++;
          firstFailure ??= (e as Error).message;
        }
      }
    };
    await Promise.all(Array.from({ length: setup.connections }, worker));
    return {
      ms: performance.now() - t0,
      sent: bodies.length,
      failures,
      ...(firstFailure === undefined ? {} : { firstFailure }),
    };
  }

  /** Sends `body(i)` at `rate` per second until `count` are sent or `seconds` pass. */
  async function open(
    target: Target,
    rate: number,
    count: number,
    seconds: number,
    body: (i: number) => string,
  ): Promise<Report> {
    const latencies: number[] = [];
    const inFlight: Promise<void>[] = [];
    let failures = 0;
    let firstFailure: string | undefined;
    let sent = 0;
    const t0 = performance.now();
    const until = t0 + seconds * 1000;
    while (sent < count && performance.now() < until) {
      const due = Math.min(count, Math.floor(((performance.now() - t0) / 1000) * rate) + 1);
      for (; sent < due; sent++) {
        const i = sent;
        const b = body(i);
        const start = performance.now();
        inFlight.push(
          send(target, b, false)
            .then(
              (a) => {
                latencies[i] = performance.now() - start;
                if (a.status !== target.expect) throw new Error(`answered ${a.status}`);
              },
              (e: unknown) => {
                throw e;
              },
            )
            .catch((e: unknown) => {
              failures++;
              firstFailure ??= (e as Error).message;
            }),
        );
      }
      await new Promise((r) => setTimeout(r, 1));
    }
    await Promise.all(inFlight);
    return {
      ms: performance.now() - t0,
      sent,
      failures,
      latencies,
      ...(firstFailure === undefined ? {} : { firstFailure }),
    };
  }

  async function flood(target: Target, body: string, seconds: number): Promise<Report> {
    const statuses: Record<string, number> = {};
    let sent = 0;
    let failures = 0;
    let firstFailure: string | undefined;
    const t0 = performance.now();
    const until = t0 + seconds * 1000;
    const worker = async () => {
      while (performance.now() < until) {
        sent++;
        try {
          const a = await send(target, body, false);
          statuses[a.status] = (statuses[a.status] ?? 0) + 1;
        } catch (e) {
          failures++;
          firstFailure ??= (e as Error).message;
        }
      }
    };
    await Promise.all(Array.from({ length: setup.connections }, worker));
    return {
      ms: performance.now() - t0,
      sent,
      failures,
      statuses,
      ...(firstFailure === undefined ? {} : { firstFailure }),
    };
  }

  return {
    async run(c: Command): Promise<Report> {
      switch (c.cmd) {
        case 'closed':
          return closed(c.target, c.bodies);
        case 'open':
          return open(c.target, c.rate, c.bodies.length, Infinity, (i) => c.bodies[i]!);
        case 'soak': {
          const key = createPrivateKey(setup.key);
          const chain = parsePemChain(setup.cert);
          const ids: string[] = [];
          const r = await open(c.target, c.rate, Infinity, c.seconds, () => {
            const env = sampleEnvelope('evidence.request', { from: c.from, to: c.to });
            ids.push(env.id);
            return signMessage(env, { key, chain });
          });
          // Latencies of a long soak are not needed, only that every answer was right.
          return { ...r, latencies: [], ids };
        }
        case 'flood':
          return flood(c.target, c.body, c.seconds);
      }
    },
    close: () => agent.destroy(),
  };
}

/** The bench side of a load worker: one command at a time. */
export class LoadClient {
  private readonly worker: Worker;
  private waiting: ((r: Report) => void) | undefined;
  private failed: ((e: unknown) => void) | undefined;

  constructor(setup: Omit<ClientSetup, 'role'>) {
    this.worker = new Worker(new URL(import.meta.url), {
      workerData: { ...setup, role: 'casebridge-bench-load' } satisfies ClientSetup,
    });
    this.worker.on('message', (r: Report) => this.waiting?.(r));
    this.worker.on('error', (e) => this.failed?.(e));
  }

  run(c: Command): Promise<Report> {
    return new Promise((resolve, reject) => {
      this.waiting = resolve;
      this.failed = reject;
      this.worker.postMessage(c);
    });
  }

  /** Like `run`, but throws when any request failed. */
  async ok(c: Command): Promise<Report> {
    const r = await this.run(c);
    if (r.failures > 0) throw new Error(`${r.failures} of ${r.sent} failed: ${r.firstFailure}`);
    return r;
  }

  async close(): Promise<void> {
    await this.worker.terminate();
  }
}

if ((workerData as Partial<ClientSetup> | undefined)?.role === 'casebridge-bench-load') {
  const c = client(workerData as ClientSetup);
  const port = parentPort as MessagePort;
  port.on('message', (cmd: Command) => {
    void c.run(cmd).then((r) => port.postMessage(r));
  });
}
