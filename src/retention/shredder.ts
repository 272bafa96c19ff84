/**
 * Retention with crypto-shredding (docs/operations.md, "Data at rest"). Once every
 * message of an epoch (a UTC day) is older than the retention period, the store
 * erases their content, then the epoch key is destroyed: from then on no copy of
 * the database, however old, opens them. The audit log holds digests only, so it
 * and every proof still verify.
 */
import type { AuditActor } from '../audit/types.js';
import type { RetentionPort } from './ports.js';
import type { EpochKeys } from './keys.js';

const DAY_MS = 86_400_000;
const DEFAULT_INTERVAL_MS = 3_600_000;

/** Epochs whose last possible message is older than `retentionDays` at `now`, oldest first. */
export function expiredEpochs(
  epochs: Iterable<string>,
  now: Date,
  retentionDays: number,
): string[] {
  const out = new Set<string>();
  for (const e of epochs) {
    const start = Date.parse(`${e}T00:00:00.000Z`);
    if (Number.isFinite(start) && start + (1 + retentionDays) * DAY_MS <= now.getTime()) out.add(e);
  }
  return [...out].sort();
}

export interface ShredderOptions {
  store: RetentionPort;
  keys: EpochKeys;
  retentionDays: number;
  actor: AuditActor;
  now: () => Date;
  /** How often to look for expired epochs; default hourly. */
  intervalMs?: number;
  onShredded?: (epoch: string, outcome: { shredded: number; carried: number }) => void;
  /** A failed run (e.g. a full disk); the next run tries again. */
  onError?: (e: unknown) => void;
}

export interface ShredReport {
  epochs: string[];
  shredded: number;
  carried: number;
}

export class Shredder {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<ShredReport> | undefined;

  constructor(private readonly opts: ShredderOptions) {}

  start(): void {
    if (this.timer !== undefined) return;
    const tick = () => {
      this.runOnce().catch((e: unknown) => this.opts.onError?.(e));
    };
    this.timer = setInterval(tick, this.opts.intervalMs ?? DEFAULT_INTERVAL_MS);
    this.timer.unref();
    tick();
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One pass; concurrent calls share it. */
  runOnce(): Promise<ShredReport> {
    this.running ??= this.pass().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async pass(): Promise<ShredReport> {
    const { store, keys, retentionDays, actor } = this.opts;
    const now = this.opts.now();
    // Key files without rows too: a run that stopped between the commit and the destruction.
    const due = expiredEpochs([...(await store.liveEpochs()), ...keys.list()], now, retentionDays);
    const report: ShredReport = { epochs: [], shredded: 0, carried: 0 };
    for (const epoch of due) {
      const outcome = await store.shredEpoch(epoch, actor);
      // The rows are erased (or moved to a live epoch) and committed: now the key goes.
      keys.destroy(epoch);
      report.epochs.push(epoch);
      report.shredded += outcome.shredded;
      report.carried += outcome.carried;
      this.opts.onShredded?.(epoch, outcome);
    }
    return report;
  }
}
