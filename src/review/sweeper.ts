/**
 * The gateway's review clock (protocol §5.5): lapses expired claims and reports
 * messages that became overdue, on a timer and whenever a reader saw an expired
 * claim. The clock is injected, so tests can move time.
 */
import type { AuditActor } from '../audit/types.js';
import type { Logger } from '../ops/logger.js';
import type { ReviewPort } from './ports.js';

/** Rows handled per pass; a longer backlog is taken on the next pass at once. */
const BATCH = 200;

export interface SweeperOptions {
  store: Pick<ReviewPort, 'lapseExpired' | 'takeNewlyOverdue'>;
  /** The actor of `message.claim-lapsed` entries: the gateway. */
  actor: AuditActor;
  now: () => Date;
  logger: Logger;
  intervalMs: number;
}

export class ReviewSweeper {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private stopped = false;

  constructor(private readonly opts: SweeperOptions) {}

  start(): void {
    this.stopped = false;
    this.timer = setInterval(() => this.kick(), this.opts.intervalMs);
    this.timer.unref();
    this.kick();
  }

  /** Runs a pass soon; passes never overlap. */
  kick(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.pass().finally(() => {
      this.running = undefined;
      if (this.again) {
        this.again = false;
        this.kick();
      }
    });
  }

  /** One pass, for callers that need it done (tests, shutdown). */
  async sweep(): Promise<void> {
    while (this.running) await this.running;
    await this.pass();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }

  private async pass(): Promise<void> {
    try {
      const now = this.opts.now();
      const lapsed = await this.opts.store.lapseExpired(now, this.opts.actor, BATCH);
      if (lapsed > 0) this.opts.logger.info('claims lapsed', { count: lapsed });
      const overdue = await this.opts.store.takeNewlyOverdue(now, BATCH);
      for (const m of overdue) {
        // Ids and routing metadata only (protocol §5.5; never content).
        this.opts.logger.warn('message overdue', {
          messageId: m.id,
          type: m.type,
          priority: m.priority,
          agency: m.to,
          status: m.status,
        });
      }
      if (lapsed === BATCH || overdue.length === BATCH) this.again = true;
    } catch (e) {
      this.opts.logger.error('review sweep failed', {
        error: e instanceof Error ? e.name : 'unknown',
        code: (e as { code?: unknown }).code,
      });
    }
  }
}
