import type { KeyObject } from 'node:crypto';
import { signCheckpoint } from '../audit/checkpoint.js';
import { rootHash } from '../audit/merkle.js';
import type { AuditStore, Checkpoint } from '../store/types.js';

export interface CheckpointerOptions {
  store: AuditStore;
  /** protocol §6.3: origin line and key name, default `casebridge/<gateway id>`. */
  origin: string;
  keyName: string;
  key: KeyObject;
  intervalMs: number;
  now: () => Date;
  onSigned?: (cp: Checkpoint) => void;
}

/**
 * Signs a checkpoint whenever the log has grown since the last one, at least
 * once per interval (protocol §6.3). Every checkpoint is kept.
 */
export class Checkpointer {
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly opts: CheckpointerOptions) {}

  start(): void {
    this.signNow();
    this.timer = setInterval(() => this.signNow(), this.opts.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Signs the current tree if it is larger than the latest checkpoint. */
  signNow(): Checkpoint | undefined {
    const { store } = this.opts;
    const size = store.treeSize();
    const latest = store.latestCheckpoint();
    if (size === 0 || (latest && latest.size >= size)) return latest;
    const root = rootHash(size, store.nodes());
    const text = signCheckpoint(
      { origin: this.opts.origin, size, root },
      this.opts.keyName,
      this.opts.key,
    );
    const cp: Checkpoint = { size, root, text, signedAt: this.opts.now().toISOString() };
    store.addCheckpoint(cp);
    this.opts.onSigned?.(cp);
    return cp;
  }
}
