import type { KeyObject } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { signCheckpoint } from '../audit/checkpoint.js';
import { rootHash, withNodes } from '../audit/merkle.js';
import type { AuditLogReader, Checkpoint, CheckpointStore } from '../audit/types.js';

export interface CheckpointerOptions {
  store: AuditLogReader & CheckpointStore;
  /** protocol §6.3: origin line and key name, default `casebridge/<gateway id>`. */
  origin: string;
  keyName: string;
  key: KeyObject;
  intervalMs: number;
  now: () => Date;
  onSigned?: (cp: Checkpoint) => void;
  logger?: CheckpointLogger;
  /** Signs only while this says so (several gateways, protocol §11); unset: always. */
  mayPublish?: () => boolean;
}

export interface CheckpointLogger {
  info(message: string, meta?: Record<string, unknown>): void;
  error(message: string, meta?: Record<string, unknown>): void;
}

/**
 * Signs a checkpoint whenever the log has grown since the last one, at least
 * once per interval (protocol §6.3). Every checkpoint is kept. A failure on the
 * timer (a full disk) is logged once and tried again on the next tick; it never
 * escapes as an uncaught exception.
 */
export class Checkpointer {
  private timer: NodeJS.Timeout | undefined;
  /** Monotonic ms when the latest checkpoint last covered the whole log. */
  private coveredAt = performance.now();
  private failing = false;
  /** One tick at a time: a slow store never stacks signings. */
  private running: Promise<void> | undefined;

  constructor(private readonly opts: CheckpointerOptions) {}

  start(): void {
    void this.tick();
    this.timer = setInterval(() => void this.tick(), this.opts.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One timer run: signNow, with its failure logged and kept for the next tick; skipped while one runs. */
  async tick(): Promise<void> {
    if (this.running) return;
    this.running = this.signLogged();
    try {
      await this.running;
    } finally {
      this.running = undefined;
    }
  }

  /**
   * The checkpoint of a shutdown: after the signing under way, if any (it may have
   * read the tree before the last entries), one more that covers the log as it is.
   */
  async final(): Promise<void> {
    while (this.running) await this.running;
    await this.tick();
  }

  private async signLogged(): Promise<void> {
    try {
      await this.signNow();
      if (this.failing) this.opts.logger?.info('checkpoint signing works again');
      this.failing = false;
    } catch (e) {
      if (!this.failing) {
        this.opts.logger?.error('checkpoint signing failed; retrying on every tick', {
          error: e instanceof Error ? e.name : typeof e,
          code: (e as { code?: unknown } | null)?.code,
        });
      }
      this.failing = true;
    }
  }

  /**
   * Seconds since the latest checkpoint stopped covering the log, while the log
   * has grown past it; 0 when it covers the whole log.
   */
  async staleSeconds(): Promise<number> {
    const latest = await this.opts.store.latestCheckpoint();
    if ((await this.opts.store.treeSize()) <= (latest?.size ?? 0)) return 0;
    if (this.opts.mayPublish?.() === false) {
      // Another gateway signs: how old its latest checkpoint is, on the wall clock.
      const signedAt = latest === undefined ? NaN : Date.parse(latest.signedAt);
      if (Number.isFinite(signedAt))
        return Math.max(0, this.opts.now().getTime() - signedAt) / 1000;
    }
    return (performance.now() - this.coveredAt) / 1000;
  }

  /** Signs the current tree if it is larger than the latest checkpoint. */
  async signNow(): Promise<Checkpoint | undefined> {
    const { store } = this.opts;
    const size = await store.treeSize();
    const latest = await store.latestCheckpoint();
    if (size === 0 || (latest && latest.size >= size)) {
      this.coveredAt = performance.now();
      return latest;
    }
    // Another gateway holds the signer lease (protocol §11) and will cover the log.
    if (this.opts.mayPublish?.() === false) return undefined;
    const root = await withNodes(
      (src) => rootHash(size, src),
      (c) => store.nodesAt(c),
    );
    const text = signCheckpoint(
      { origin: this.opts.origin, size, root },
      this.opts.keyName,
      this.opts.key,
    );
    const cp: Checkpoint = { size, root, text, signedAt: this.opts.now().toISOString() };
    await store.addCheckpoint(cp);
    this.coveredAt = performance.now();
    this.opts.onSigned?.(cp);
    return cp;
  }
}
